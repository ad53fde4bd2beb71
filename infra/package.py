"""`make package`: the deployable stack of one stage in `build/<stage>/`.

1. `chalice package --stage <stage>` (through chalice's Python API) writes the SAM
   template of the functions, the REST API and the schedules, and the Lambda zip.
   Chalice is told not to manage IAM (`manage_iam_role=False`): roles come from step 2.
2. `merge()` adds the resources `infra.resources` generates from the app's own table
   and queue definitions, and wires every function chalice emitted to them: a fixed
   name (`loyalty-{stage}-{function}`), its own least-privilege role and log group,
   alarms, the JWT parameters, and SQS event sources bound to the queue resources
   (so CloudFormation creates a queue before its consumer).
3. `build/<stage>/sam.json` (merged template) and `build/<stage>/deployment.zip`;
   docs/DEPLOY.md has the `aws cloudformation package` / `deploy` steps.

Usage: `STAGE=prod python -m infra.package` or `python -m infra.package --stage prod
[--out DIR] [--keep-chalice-template]`.
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any, Iterable, Mapping, Optional

from infra import resources as res

PROJECT_DIR = Path(__file__).resolve().parent.parent
# Chalice writes this as every function's Role; merge() replaces it with the function's own role.
ROLE_PLACEHOLDER = "arn:aws:iam::000000000000:role/replaced-by-infra-package"
TEMPLATE = "sam.json"
CODE = "deployment.zip"
CHALICE_TEMPLATE = "chalice-sam.json"
_SQS_ARN = re.compile(r"^arn:\$\{AWS::Partition\}:sqs:\$\{AWS::Region\}:\$\{AWS::AccountId\}:(?P<name>[^:]+)$")


def deployable_stages() -> list[str]:
    config = json.loads((PROJECT_DIR / ".chalice" / "config.json").read_text())
    return [s for s in config.get("stages", {}) if s != "local"]


def chalice_package(stage: str, out_dir: Path) -> dict:
    """Run `chalice package --stage <stage> out_dir` in this process; return the template."""
    from chalice.cli.factory import CLIFactory

    # Chalice asks botocore for the region to name the API Gateway service principal;
    # the template itself is region-independent (it uses ${AWS::Region}).
    if not (os.environ.get("AWS_DEFAULT_REGION") or os.environ.get("AWS_REGION")):
        os.environ["AWS_DEFAULT_REGION"] = "us-east-1"
    # os.environ itself, as the chalice CLI does: app.py reads the stage's variables at import.
    factory = CLIFactory(project_dir=str(PROJECT_DIR), environ=os.environ)
    config = factory.create_config_obj(
        chalice_stage_name=stage,
        user_provided_params={"manage_iam_role": False, "iam_role_arn": ROLE_PLACEHOLDER})
    packager = factory.create_app_packager(config, factory.create_package_options(), "cloudformation", "json")
    packager.package_app(config, str(out_dir), stage)
    return json.loads((out_dir / TEMPLATE).read_text())


def _sqs_queue_name(queue: Any) -> Optional[str]:
    """The queue name in chalice's `Fn::Sub` ARN of an SQS event source."""
    if isinstance(queue, dict) and isinstance(queue.get("Fn::Sub"), str):
        match = _SQS_ARN.match(queue["Fn::Sub"])
        if match:
            return match.group("name")
    return None


def _add(target: dict, new: Mapping[str, Any], what: str) -> None:
    clash = sorted(set(target) & set(new))
    if clash:
        raise ValueError(f"{what}: logical ids already in chalice's template: {clash}")
    target.update(new)


def merge(chalice_template: Mapping[str, Any], stage: str, models: Optional[Iterable] = None,
          queues: Optional[Mapping[str, Mapping[str, Any]]] = None) -> dict:
    """Chalice's template plus the stack's tables, queues, roles, log groups and alarms."""
    from chalicelib.store import registry

    models = list(registry.all_models() if models is None else models)
    queues = dict(registry.QUEUES if queues is None else queues)
    profile = res.stage_profile(stage)
    template = copy.deepcopy(dict(chalice_template))
    template["Description"] = f"Loyalty backend, stage {stage}: chalice package merged with infra/ (infra.package)"
    resources = template.setdefault("Resources", {})

    table_names = [m.Meta.resource for m in models]
    indexed_tables = [m.Meta.resource for m in models if res.has_indexes(m)]
    queue_by_name = {res.resource_name(stage, q): q for q in queues}

    _add(template.setdefault("Parameters", {}), res.parameters(), "parameters")
    _add(template.setdefault("Conditions", {}), res.conditions(), "conditions")
    _add(resources, res.table_resources(models, profile), "tables")
    _add(resources, res.queue_resources(queues, profile), "queues")
    _add(resources, res.alarm_topic_resources(profile), "alarm topic")
    _add(resources, res.event_bus_resources(profile), "events bus")
    _add(resources, res.exports_bucket_resources(profile), "exports bucket")
    _add(resources, res.dlq_alarms(queues, profile), "dead-letter queue alarms")
    _add(resources, res.age_alarms(queues, profile), "queue age alarms")
    if "RestAPI" in resources:  # API Gateway's own answers in the app's error shape
        _add(resources, res.gateway_responses("RestAPI"), "gateway responses")

    functions = [k for k, v in resources.items() if v.get("Type") == "AWS::Serverless::Function"]
    for function_id in functions:
        fn = resources[function_id]
        props = fn["Properties"]
        if props.get("Role") != ROLE_PLACEHOLDER:
            raise ValueError(f"{function_id}: expected chalice to leave the role to infra, got {props.get('Role')!r}")
        name = res.resource_name(stage, res.kebab(function_id))
        props["FunctionName"] = name
        props["Role"] = res.arn(function_id + "Role")
        env = props.setdefault("Environment", {}).setdefault("Variables", {})
        env.update(res.jwt_environment())
        if env.get("LOYALTY_STAGE") != stage:
            raise ValueError(f"{function_id}: LOYALTY_STAGE must be {stage!r} (.chalice/config.json)")

        events = props.get("Events") or {}
        consumed = []
        for event_id, event in events.items():
            if event.get("Type") != "SQS":
                continue
            queue_name = _sqs_queue_name(event["Properties"].get("Queue"))
            if queue_name not in queue_by_name:
                raise ValueError(f"{function_id}.{event_id}: queue {queue_name!r} is not in registry.QUEUES "
                                 f"({sorted(queue_by_name)})")
            queue = queue_by_name[queue_name]
            event["Properties"]["Queue"] = res.arn(res.queue_logical_id(queue))
            if queue in res.PARTIAL_BATCH_QUEUES:
                event["Properties"]["FunctionResponseTypes"] = ["ReportBatchItemFailures"]
            # AWS refuses an event source whose queue would hand the message out again mid-run.
            visibility = int(queues[queue].get("VisibilityTimeout", 30))
            if int(props.get("Timeout", 3)) > visibility:
                raise ValueError(f"{function_id}: timeout {props.get('Timeout')} s exceeds the {queue} queue's "
                                 f"VisibilityTimeout {visibility} s")
            consumed.append(queue)

        stream_tables = []
        if function_id == res.OUTBOX_RELAY_FUNCTION:  # the outbox's stream feeds the relay
            events = props.setdefault("Events", {})
            events.update(res.outbox_stream_event())
            stream_tables.append("outbox")
        access = res.function_access(events, consumed, table_names, queues,
                                     tracing=props.get("Tracing") == "Active")
        # every function that commits writes may relay their events (the schedules only start jobs)
        _add(resources, res.function_resources(function_id, name, access, indexed_tables, profile,
                                               stream_tables=stream_tables,
                                               publishes_events=bool(access.tables != res.SCHEDULE_TABLES)),
             function_id)
        resources[function_id + "Role"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"] += \
            res.exports_statements(function_id)
        depends = fn.get("DependsOn") or []
        fn["DependsOn"] = [*([depends] if isinstance(depends, str) else depends), function_id + "LogGroup"]

    _add(template.setdefault("Outputs", {}), {
        **res.queue_outputs(queues),
        "AlarmTopicArn": {"Value": res.ref(res.ALARM_TOPIC)},
        "ExportsBucketName": {"Value": res.ref(res.EXPORTS_BUCKET_ID)},
    }, "outputs")
    return template


def build(stage: str, out_dir: Optional[Path] = None, keep_chalice_template: bool = False) -> Path:
    """Package `stage` into `out_dir` (default `build/<stage>`); return the template path."""
    if stage not in deployable_stages():
        raise SystemExit(f"unknown or non-deployable stage {stage!r}; choose one of {deployable_stages()} "
                         "(`local` is for `make run` only)")
    out_dir = Path(out_dir or PROJECT_DIR / "build" / stage)
    with tempfile.TemporaryDirectory(prefix="chalice-package-") as tmp:
        chalice_template = chalice_package(stage, Path(tmp))
        merged = merge(chalice_template, stage)
        out_dir.mkdir(parents=True, exist_ok=True)
        shutil.move(str(Path(tmp) / CODE), str(out_dir / CODE))
    (out_dir / TEMPLATE).write_text(json.dumps(merged, indent=1, sort_keys=False) + "\n")
    if keep_chalice_template:
        (out_dir / CHALICE_TEMPLATE).write_text(json.dumps(chalice_template, indent=1) + "\n")
    return out_dir / TEMPLATE


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.package", description=__doc__.split("\n\n")[0])
    parser.add_argument("--stage", default=os.environ.get("STAGE") or "dev", help="default: $STAGE or dev")
    parser.add_argument("--out", type=Path, help="output directory (default: build/<stage>)")
    parser.add_argument("--keep-chalice-template", action="store_true",
                        help=f"also write chalice's own template as {CHALICE_TEMPLATE} (to inspect the merge)")
    args = parser.parse_args(argv)
    path = build(args.stage, args.out, args.keep_chalice_template)
    print(f"wrote {path} and {path.parent / CODE}")
    print("next: aws cloudformation package ... && aws cloudformation deploy ... (docs/DEPLOY.md)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
