"""The deployable stack (`python -m infra.package`): generated from the app's own table and
queue definitions, complete, least-privilege, and free of cfn-lint errors.

The packaging runs once per stage in a subprocess (chalice imports `app` with the stage's
environment; keeping that out of the test process keeps the other tests' `app` intact).
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import pytest
from pynamodb.attributes import NumberAttribute, TTLAttribute, UnicodeAttribute
from pynamodb.indexes import GlobalSecondaryIndex, IncludeProjection, KeysOnlyProjection, LocalSecondaryIndex

from chalicelib.store.base import Record
from chalicelib.store.registry import QUEUES, all_models
from infra import resources as res
from infra.package import ROLE_PLACEHOLDER, build, merge

ROOT = Path(__file__).resolve().parents[2]
STAGES = ("dev", "prod")

# The jobs app.py schedules (SPEC §1, docs/JOBS.md): chalice function name -> cadence.
EXPECTED_SCHEDULES = {
    "recalculate-tiers": "daily",
    "expire-points": "daily",
    "expire-vouchers": "daily",
    "score-rfm": "daily",
    "run-automations": "daily",
    "report-liability": "daily",
    "mature-points": "hourly",
    "run-triggers": "hourly",
}
CADENCE = {
    "daily": re.compile(r"^cron\(\d{1,2} \d{1,2} \* \* \? \*\)$|^rate\(1 day\)$"),
    "hourly": re.compile(r"^cron\(\d{1,2} \* \* \* \? \*\)$|^rate\(1 hour\)$"),
}
# Actions without resource-level permissions: AWS only accepts "Resource": "*" for them.
# The template uses the X-Ray pair only when a function has `Tracing: Active`.
STAR_RESOURCE_ACTIONS = {"xray:PutTraceSegments", "xray:PutTelemetryRecords", "cloudwatch:PutMetricData"}
# What a policy may point at: the stack's own tables (and their indexes), queues and log groups.
SCOPED_TYPES = {"AWS::DynamoDB::Table", "AWS::SQS::Queue", "AWS::Logs::LogGroup", "AWS::Events::EventBus",
                "AWS::S3::Bucket"}
LINT_REGIONS = ["us-east-1", "eu-west-1", "ap-northeast-1"]


@dataclass
class Package:
    stage: str
    template: dict
    chalice: dict  # chalice's own template, before the merge
    out: Path


def _package(stage: str, out: Path) -> Package:
    env = {**os.environ}
    env.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    proc = subprocess.run(
        [sys.executable, "-m", "infra.package", "--stage", stage, "--out", str(out), "--keep-chalice-template"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800)  # a first build fetches numpy/scipy wheels
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return Package(stage, json.loads((out / "sam.json").read_text()),
                   json.loads((out / "chalice-sam.json").read_text()), out)


@pytest.fixture(scope="module")
def packages(tmp_path_factory) -> dict[str, Package]:
    return {stage: _package(stage, tmp_path_factory.mktemp(f"build-{stage}")) for stage in STAGES}


@pytest.fixture(params=STAGES)
def pkg(request, packages) -> Package:
    return packages[request.param]


def of_type(template: dict, type_: str) -> dict[str, dict]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == type_}


def functions(template: dict) -> dict[str, dict]:
    return of_type(template, "AWS::Serverless::Function")


def by_name(template: dict, type_: str, name_key: str) -> dict[str, tuple[str, dict]]:
    return {v["Properties"][name_key]: (k, v) for k, v in of_type(template, type_).items()}


def statements(template: dict) -> Iterator[tuple[str, dict]]:
    """Every IAM statement in the template: roles, policies, and SAM function policies."""
    for lid, r in template["Resources"].items():
        props = r.get("Properties", {})
        docs = []
        if r["Type"] == "AWS::IAM::Role":
            docs = [p["PolicyDocument"] for p in props.get("Policies", [])]
            assert not props.get("ManagedPolicyArns"), f"{lid}: managed policies are not scoped to the stack"
        elif r["Type"] in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            docs = [props["PolicyDocument"]]
        elif r["Type"] == "AWS::Serverless::Function":
            assert not props.get("Policies"), f"{lid}: SAM policies bypass the generated role"
        for doc in docs:
            for st in doc["Statement"]:
                yield lid, st


def as_list(value: Any) -> list:
    return value if isinstance(value, list) else [value]


def referenced_id(resource: Any) -> str:
    """The logical id an IAM `Resource` entry points at: GetAtt X.Arn (or a table's X.StreamArn)
    or Sub "${X.Arn}/index/*"."""
    if isinstance(resource, dict) and "Fn::GetAtt" in resource:
        lid, attr = resource["Fn::GetAtt"]
        assert attr in ("Arn", "StreamArn"), resource
        return lid
    if isinstance(resource, dict) and isinstance(resource.get("Fn::Sub"), str):
        match = re.fullmatch(r"\$\{(\w+)\.Arn\}/(?:index/)?\*", resource["Fn::Sub"])  # indexes, objects
        assert match, f"unexpected resource pattern {resource}"
        return match.group(1)
    raise AssertionError(f"resource {resource!r} is not scoped to a resource of this stack")


def role_of(template: dict, function_id: str) -> dict:
    role = template["Resources"][function_id]["Properties"]["Role"]
    assert isinstance(role, dict) and "Fn::GetAtt" in role, f"{function_id}: role {role!r} is not the stack's"
    return template["Resources"][role["Fn::GetAtt"][0]]


def granted(role: dict, prefix: str) -> set[str]:
    """Logical ids a role reaches with actions of one service (`dynamodb`, `sqs`, ...)."""
    out = set()
    for doc in role["Properties"]["Policies"]:
        for st in doc["PolicyDocument"]["Statement"]:
            if any(a.startswith(prefix + ":") for a in as_list(st["Action"])):
                out.update(referenced_id(r) for r in as_list(st["Resource"]))
    return out


# --- tables ------------------------------------------------------------------------

def test_every_model_is_an_on_demand_table_with_point_in_time_recovery(pkg):
    tables = by_name(pkg.template, "AWS::DynamoDB::Table", "TableName")
    models = all_models()
    assert len(tables) == len(models)
    for model in models:
        name = f"loyalty-{pkg.stage}-{model.Meta.resource}"
        assert name in tables, f"{model.__name__} has no table {name}"
        props = tables[name][1]["Properties"]
        assert props["BillingMode"] == "PAY_PER_REQUEST"
        assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
        keys = [{"AttributeName": model._hash_keyname, "KeyType": "HASH"}]
        if model._range_keyname:
            keys.append({"AttributeName": model._range_keyname, "KeyType": "RANGE"})
        assert props["KeySchema"] == keys
        gsis = {i.Meta.index_name for i in model._indexes.values() if isinstance(i, GlobalSecondaryIndex)}
        assert {i["IndexName"] for i in props.get("GlobalSecondaryIndexes", [])} == gsis
        ttl = res.ttl_attribute(model)
        if ttl:
            assert props["TimeToLiveSpecification"] == {"AttributeName": ttl, "Enabled": True}
        else:
            assert "TimeToLiveSpecification" not in props


def test_ttl_is_set_on_the_tables_whose_records_expire(pkg):
    expiring = {m.Meta.resource for m in all_models() if res.ttl_attribute(m)}
    assert {"idempotency", "jobs"} <= expiring  # stored responses and job records expire
    for resource in expiring:
        props = pkg.template["Resources"][res.logical_id(resource, "Table")]["Properties"]
        assert props["TimeToLiveSpecification"]["Enabled"] is True


def test_prod_tables_have_deletion_protection_and_are_retained(packages):
    for _, table in of_type(packages["prod"].template, "AWS::DynamoDB::Table").items():
        assert table["Properties"]["DeletionProtectionEnabled"] is True
        assert table["DeletionPolicy"] == table["UpdateReplacePolicy"] == "Retain"
    for _, table in of_type(packages["dev"].template, "AWS::DynamoDB::Table").items():
        assert table["Properties"]["DeletionProtectionEnabled"] is False  # dev tears down cleanly


def test_resource_names_are_the_ones_the_app_derives_at_run_time(pkg, monkeypatch):
    from chalicelib.config import Settings

    for var in [v for v in os.environ if v.startswith("LOYALTY_NAME_")]:
        monkeypatch.delenv(var)
    settings = Settings(stage=pkg.stage, jwks_url="https://issuer.example/.well-known/jwks.json")
    tables = by_name(pkg.template, "AWS::DynamoDB::Table", "TableName")
    queues = by_name(pkg.template, "AWS::SQS::Queue", "QueueName")
    for model in all_models():
        assert settings.resource_name(model.Meta.resource) in tables
    for resource in QUEUES:
        assert settings.resource_name(resource) in queues


# --- queues ------------------------------------------------------------------------

def test_every_queue_has_a_dead_letter_queue_with_redrive(pkg):
    queues = by_name(pkg.template, "AWS::SQS::Queue", "QueueName")
    assert len(queues) == 2 * len(QUEUES)
    for resource, spec in QUEUES.items():
        name = f"loyalty-{pkg.stage}-{resource}"
        props = queues[name][1]["Properties"]
        assert props["VisibilityTimeout"] == int(spec["VisibilityTimeout"])
        redrive = props["RedrivePolicy"]
        assert redrive["maxReceiveCount"] == spec["maxReceiveCount"]
        dlq_id = redrive["deadLetterTargetArn"]["Fn::GetAtt"][0]
        assert pkg.template["Resources"][dlq_id]["Properties"]["QueueName"] == name + "-dlq"


# --- IAM -----------------------------------------------------------------------------

def test_no_iam_statement_has_a_wildcard_action(pkg):
    from cfnlint.data import AdditionalSpecs
    from cfnlint.helpers import load_resource

    known = load_resource(AdditionalSpecs, "Policies.json")
    found = list(statements(pkg.template))
    assert found
    for lid, st in found:
        assert "NotAction" not in st and "NotResource" not in st, lid
        for action in as_list(st["Action"]):
            assert "*" not in action and "?" not in action, f"{lid}: wildcard action {action!r}"
            service, name = action.split(":", 1)
            assert name.lower() in known[service]["Actions"], f"{lid}: unknown action {action!r}"


def assert_resources_scoped(template: dict) -> None:
    resources = template["Resources"]
    for lid, st in statements(template):
        if st.get("Principal"):
            continue
        for resource in as_list(st["Resource"]):
            if resource == "*":
                assert set(as_list(st["Action"])) <= STAR_RESOURCE_ACTIONS, \
                    f"{lid}: Resource '*' for {st['Action']}"
                continue
            target = referenced_id(resource)
            assert resources[target]["Type"] in SCOPED_TYPES, f"{lid}: grants on {target}"


def test_iam_resources_are_the_stacks_own_tables_queues_and_log_groups(pkg):
    assert_resources_scoped(pkg.template)


def test_each_function_has_its_own_role_and_log_group(pkg):
    roles = set()
    for fid, fn in functions(pkg.template).items():
        props = fn["Properties"]
        assert props["FunctionName"].startswith(f"loyalty-{pkg.stage}-")
        role_id = props["Role"]["Fn::GetAtt"][0]
        assert pkg.template["Resources"][role_id]["Type"] == "AWS::IAM::Role"
        roles.add(role_id)
        logs = granted(role_of(pkg.template, fid), "logs")
        assert len(logs) == 1
        group = pkg.template["Resources"][logs.pop()]["Properties"]
        assert group["LogGroupName"] == "/aws/lambda/" + props["FunctionName"]
        assert group["RetentionInDays"] > 0
    assert len(roles) == len(functions(pkg.template))
    assert ROLE_PLACEHOLDER not in json.dumps(pkg.template)


def test_scheduled_functions_reach_only_the_jobs_table_and_queue(pkg):
    scheduled = [fid for fid, fn in functions(pkg.template).items()
                 if {e["Type"] for e in fn["Properties"].get("Events", {}).values()} == {"Schedule"}]
    assert scheduled
    for fid in scheduled:
        role = role_of(pkg.template, fid)
        assert granted(role, "dynamodb") == {"JobsTable"}
        assert granted(role, "sqs") == {"JobsQueue"}


def test_queue_consumers_are_bound_to_the_stacks_queue(pkg):
    consumers = 0
    for fid, fn in functions(pkg.template).items():
        for event in fn["Properties"].get("Events", {}).values():
            if event["Type"] != "SQS":
                continue
            consumers += 1
            queue_id = event["Properties"]["Queue"]["Fn::GetAtt"][0]
            queue = pkg.template["Resources"][queue_id]
            assert queue["Type"] == "AWS::SQS::Queue"
            assert fn["Properties"]["Timeout"] <= queue["Properties"]["VisibilityTimeout"]
            assert queue_id in granted(role_of(pkg.template, fid), "sqs")
    assert consumers >= 1  # the jobs worker


def test_the_api_handler_reaches_every_table_and_queue(pkg):
    role = role_of(pkg.template, "APIHandler")
    assert granted(role, "dynamodb") == {res.logical_id(m.Meta.resource, "Table") for m in all_models()}
    assert granted(role, "sqs") == {res.queue_logical_id(q) for q in QUEUES}


def test_the_exports_bucket_is_encrypted_private_expiring_and_written_by_the_jobs_worker_only(pkg):
    from chalicelib.store.data import EXPORTS_BUCKET

    buckets = by_name(pkg.template, "AWS::S3::Bucket", "BucketName")
    lid, bucket = buckets[f"loyalty-{pkg.stage}-exports"]
    props = bucket["Properties"]
    assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"] == {
        "SSEAlgorithm": "AES256"}
    assert set(props["PublicAccessBlockConfiguration"].values()) == {True}
    assert len(props["PublicAccessBlockConfiguration"]) == 4
    (rule,) = props["LifecycleConfiguration"]["Rules"]
    assert (rule["Status"], rule["ExpirationInDays"]) == ("Enabled", EXPORTS_BUCKET["expire_days"])
    assert rule["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": EXPORTS_BUCKET["abort_multipart_days"]}
    assert bucket["DeletionPolicy"] == ("Retain" if pkg.stage == "prod" else "Delete")
    writers, readers = set(), set()
    for fid in functions(pkg.template):
        for doc in role_of(pkg.template, fid)["Properties"]["Policies"]:
            for st in doc["PolicyDocument"]["Statement"]:
                actions = set(as_list(st["Action"]))
                if any(a.startswith("s3:") for a in actions):
                    assert {referenced_id(r) for r in as_list(st["Resource"])} == {lid}
                    (writers if "s3:PutObject" in actions else readers).add(fid)
    assert writers == {"JobsWorker"} and readers == {"APIHandler"}


# --- schedules, alarms, parameters ---------------------------------------------------

def test_every_chalice_function_and_schedule_survives_the_merge(pkg):
    chalice_fns, merged_fns = functions(pkg.chalice), functions(pkg.template)
    assert set(chalice_fns) == set(merged_fns)
    for fid, fn in chalice_fns.items():
        for event_id, event in fn["Properties"].get("Events", {}).items():
            merged = merged_fns[fid]["Properties"]["Events"][event_id]
            if event["Type"] == "SQS":  # rebound from the queue's name to the queue resource
                assert merged["Properties"]["BatchSize"] == event["Properties"]["BatchSize"]
            else:
                assert merged == event
    for lid, r in pkg.chalice["Resources"].items():
        if r["Type"] != "AWS::Serverless::Function":  # the API, permissions, any Events::Rule
            assert pkg.template["Resources"][lid] == r, f"{lid} changed in the merge"


def test_the_expected_schedules_exist(pkg):
    schedules = {}
    for fn in functions(pkg.template).values():
        for event in fn["Properties"].get("Events", {}).values():
            if event["Type"] == "Schedule":
                schedules[fn["Properties"]["FunctionName"]] = event["Properties"]["Schedule"]
    for name, cadence in EXPECTED_SCHEDULES.items():
        function_name = f"loyalty-{pkg.stage}-{name}"
        assert function_name in schedules, f"no schedule {name} (app.py @app.schedule(name={name!r}))"
        assert CADENCE[cadence].match(schedules[function_name]), (name, schedules[function_name])


def test_alarms_on_dead_letter_queues_and_lambda_errors_and_throttles(pkg):
    alarms = [a["Properties"] for a in of_type(pkg.template, "AWS::CloudWatch::Alarm").values()]
    watched = {(a["Namespace"], a["MetricName"], json.dumps(a["Dimensions"][0]["Value"])) for a in alarms}
    for resource in QUEUES:
        dlq = json.dumps({"Fn::GetAtt": [res.dlq_logical_id(resource), "QueueName"]})
        assert ("AWS/SQS", "ApproximateNumberOfMessagesVisible", dlq) in watched, resource
    for fid in functions(pkg.template):
        for metric in ("Errors", "Throttles"):
            assert ("AWS/Lambda", metric, json.dumps({"Ref": fid})) in watched, (fid, metric)
    for a in alarms:
        assert a["AlarmActions"] == [{"Ref": "AlarmTopic"}]


def test_jwt_settings_are_template_parameters_passed_to_every_function(pkg):
    params = pkg.template["Parameters"]
    assert {"JwtIssuer", "JwtAudience", "JwksUrl"} <= set(params)
    assert "Default" not in params["JwtIssuer"]  # a deployed stage must name its issuer
    for fid, fn in functions(pkg.template).items():
        env = fn["Properties"]["Environment"]["Variables"]
        assert env["LOYALTY_STAGE"] == pkg.stage
        assert env["LOYALTY_JWT_ISSUER"] == {"Ref": "JwtIssuer"}
        assert env["LOYALTY_JWT_AUDIENCE"] == {"Ref": "JwtAudience"}
        assert "JwksUrl" in json.dumps(env["LOYALTY_JWKS_URL"])
        assert "LOYALTY_JWT_SECRET" not in env, fid


# --- cfn-lint and the package --------------------------------------------------------

def lint_errors(template: dict) -> list[str]:
    from cfnlint.api import lint

    matches = lint(json.dumps(template), regions=LINT_REGIONS)
    return [f"{m.rule.id} {m.message} (line {m.linenumber})" for m in matches if m.rule.id.startswith("E")]


def test_cfn_lint_reports_no_errors(pkg):
    assert lint_errors(pkg.template) == []


def test_the_lambda_package_holds_the_app(pkg):
    names = set(zipfile.ZipFile(pkg.out / "deployment.zip").namelist())
    assert {"app.py", "chalicelib/store/registry.py", "pynamodb/models.py"} <= names
    assert not any(n.startswith(("tests/", "infra/", ".venv/")) for n in names)


def test_the_local_stage_is_not_deployable(tmp_path):
    with pytest.raises(SystemExit):
        build("local", tmp_path)


# --- the generator picks up models, indexes and TTLs it has never seen ---------------

class ByEmail(GlobalSecondaryIndex):
    class Meta:
        index_name = "by-email"
        projection = IncludeProjection(["name"])

    at = NumberAttribute(range_key=True)  # declared before the hash key on purpose
    email = UnicodeAttribute(hash_key=True)


class ByAt(LocalSecondaryIndex):
    class Meta:
        index_name = "by-at"
        projection = KeysOnlyProjection()

    pk = UnicodeAttribute(hash_key=True)
    at = NumberAttribute(range_key=True)


class FutureRecord(Record):
    class Meta(Record.Meta):
        resource = "future-things"

    sk = UnicodeAttribute(range_key=True)
    pk = UnicodeAttribute(hash_key=True)
    email = UnicodeAttribute(null=True)
    at = NumberAttribute(null=True)
    expires = TTLAttribute(null=True, attr_name="ttl")
    by_email = ByEmail()
    by_at = ByAt()


def fake_chalice(stage: str, events: dict | None = None, timeout: int = 29) -> dict:
    return {"AWSTemplateFormatVersion": "2010-09-09", "Transform": "AWS::Serverless-2016-10-31", "Resources": {
        "Worker": {"Type": "AWS::Serverless::Function", "Properties": {
            "Runtime": "python3.11", "Handler": "app.worker", "CodeUri": "./deployment.zip", "Timeout": timeout,
            "Role": ROLE_PLACEHOLDER, "Environment": {"Variables": {"LOYALTY_STAGE": stage}},
            "Events": events or {}}}}}


def test_a_new_model_with_indexes_and_ttl_becomes_a_table():
    table = res.table_resource(FutureRecord, res.stage_profile("dev"))["Properties"]
    assert table["TableName"] == "loyalty-dev-future-things"
    assert table["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"},
                                  {"AttributeName": "sk", "KeyType": "RANGE"}]
    assert table["AttributeDefinitions"] == [
        {"AttributeName": "at", "AttributeType": "N"}, {"AttributeName": "email", "AttributeType": "S"},
        {"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": "sk", "AttributeType": "S"}]
    assert table["GlobalSecondaryIndexes"] == [{
        "IndexName": "by-email",
        "KeySchema": [{"AttributeName": "email", "KeyType": "HASH"}, {"AttributeName": "at", "KeyType": "RANGE"}],
        "Projection": {"ProjectionType": "INCLUDE", "NonKeyAttributes": ["name"]}}]
    assert table["LocalSecondaryIndexes"][0]["KeySchema"][0] == {"AttributeName": "pk", "KeyType": "HASH"}
    assert table["TimeToLiveSpecification"] == {"AttributeName": "ttl", "Enabled": True}


def test_merge_grants_the_new_table_and_its_indexes_and_lints_clean():
    template = merge(fake_chalice("dev"), "dev", models=[*all_models(), FutureRecord])
    role = template["Resources"]["WorkerRole"]
    assert "FutureThingsTable" in granted(role, "dynamodb")
    index_grants = [st for st in role["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
                    if st["Sid"] == "Indexes"]
    assert {"Fn::Sub": "${FutureThingsTable.Arn}/index/*"} in index_grants[0]["Resource"]
    assert all(r["Fn::Sub"].endswith("/index/*") for r in index_grants[0]["Resource"])
    assert lint_errors(template) == []


def test_merge_refuses_a_consumer_of_a_queue_the_registry_does_not_define():
    events = {"E": {"Type": "SQS", "Properties": {"Queue": {
        "Fn::Sub": "arn:${AWS::Partition}:sqs:${AWS::Region}:${AWS::AccountId}:loyalty-dev-elsewhere"}}}}
    with pytest.raises(ValueError, match="not in registry.QUEUES"):
        merge(fake_chalice("dev", events), "dev")


def test_merge_refuses_a_consumer_that_outlives_the_visibility_timeout():
    events = {"E": {"Type": "SQS", "Properties": {"Queue": {
        "Fn::Sub": "arn:${AWS::Partition}:sqs:${AWS::Region}:${AWS::AccountId}:loyalty-dev-campaign-messages"}}}}
    with pytest.raises(ValueError, match="VisibilityTimeout"):
        merge(fake_chalice("dev", events, timeout=900), "dev")


def test_active_tracing_adds_only_the_documented_star_resource_exception():
    chalice = fake_chalice("dev")
    chalice["Resources"]["Worker"]["Properties"]["Tracing"] = "Active"
    template = merge(chalice, "dev")
    star = [st for _, st in statements(template) if st["Resource"] == "*"]
    assert len(star) == 1 and set(star[0]["Action"]) <= STAR_RESOURCE_ACTIONS
    assert_resources_scoped(template)


# --- API Gateway's own answers (SPEC 4.2) ---------------------------------------------

def test_gateway_responses_answer_unknown_routes_and_failures_in_the_error_shape(pkg):
    responses = {v["Properties"]["ResponseType"]: v["Properties"]
                 for v in of_type(pkg.template, "AWS::ApiGateway::GatewayResponse").values()}
    assert {"MISSING_AUTHENTICATION_TOKEN", "DEFAULT_4XX", "DEFAULT_5XX", "THROTTLED",
            "INTEGRATION_TIMEOUT", "UNAUTHORIZED", "ACCESS_DENIED"} <= set(responses)
    # An unknown path (or method) reaches API Gateway as a missing token: 404 NOT_FOUND.
    missing = responses["MISSING_AUTHENTICATION_TOKEN"]
    assert missing["StatusCode"] == "404"
    assert json.loads(missing["ResponseTemplates"]["application/json"])["error"]["code"] == "NOT_FOUND"
    for kind, props in responses.items():
        assert props["RestApiId"] == {"Ref": "RestAPI"}, kind
        assert "RestAPI" in pkg.template["Resources"]
        body = json.loads(props["ResponseTemplates"]["application/json"])
        assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}, kind
        # constant bodies: no $context/$input mapping that could echo a token or a path back
        assert "$" not in props["ResponseTemplates"]["application/json"], kind
        assert props["ResponseParameters"]["gatewayresponse.header.Content-Type"] == "'application/json'"
    assert "StatusCode" not in responses["DEFAULT_4XX"] and "StatusCode" not in responses["DEFAULT_5XX"]
    assert json.loads(responses["DEFAULT_5XX"]["ResponseTemplates"]["application/json"])["error"]["code"] \
        == "RETRY_LATER"


def test_every_path_answers_every_method_through_the_app(pkg):
    """Wrong methods reach the app (405 METHOD_NOT_ALLOWED) instead of API Gateway's 403."""
    body = pkg.template["Resources"]["RestAPI"]["Properties"]["DefinitionBody"]
    methods = {"get", "post", "put", "patch", "delete", "head", "options"}
    for path, ops in body["paths"].items():
        assert methods <= set(ops), (path, sorted(methods - set(ops)))


def test_the_outbox_stream_feeds_the_relay_function_with_partial_batch_failures(pkg):
    outbox = pkg.template["Resources"][res.logical_id("outbox", "Table")]["Properties"]
    assert outbox["StreamSpecification"] == {"StreamViewType": "NEW_IMAGE"}
    relay = functions(pkg.template)[res.OUTBOX_RELAY_FUNCTION]["Properties"]
    assert relay["Handler"] == "app.outbox_relay"
    [event] = relay["Events"].values()
    assert event["Type"] == "DynamoDB"
    assert event["Properties"]["Stream"] == {"Fn::GetAtt": [res.logical_id("outbox", "Table"), "StreamArn"]}
    assert event["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    role = pkg.template["Resources"][res.OUTBOX_RELAY_FUNCTION + "Role"]["Properties"]
    [streams] = [s for s in role["Policies"][0]["PolicyDocument"]["Statement"] if s["Sid"] == "Streams"]
    assert streams["Resource"] == [{"Fn::GetAtt": [res.logical_id("outbox", "Table"), "StreamArn"]}]


def test_the_jobs_queue_outlasts_its_worker_several_times(pkg):
    queue = pkg.template["Resources"][res.queue_logical_id("jobs")]["Properties"]
    worker = functions(pkg.template)["JobsWorker"]["Properties"]
    assert queue["VisibilityTimeout"] >= 5 * worker["Timeout"]


def test_the_events_bus_exists_and_only_writing_functions_may_publish_to_it(pkg):
    bus = pkg.template["Resources"][res.EVENT_BUS]
    assert bus["Type"] == "AWS::Events::EventBus"
    assert bus["Properties"]["Name"] == f"loyalty-{pkg.stage}-events"
    for fid, fn in functions(pkg.template).items():
        role = pkg.template["Resources"][fid + "Role"]["Properties"]
        sids = {s["Sid"] for s in role["Policies"][0]["PolicyDocument"]["Statement"]}
        scheduled = {e["Type"] for e in fn["Properties"].get("Events", {}).values()} == {"Schedule"}
        assert ("PublishEvents" in sids) == (not scheduled), fid


def test_webhook_deliveries_queue_feeds_the_delivery_function_with_partial_batch_failures(pkg):
    fn = functions(pkg.template)["WebhookDelivery"]["Properties"]
    assert fn["Handler"] == "app.webhook_delivery"
    [event] = fn["Events"].values()
    assert event["Type"] == "SQS"
    assert event["Properties"]["Queue"] == {"Fn::GetAtt": [res.queue_logical_id("webhook-deliveries"), "Arn"]}
    assert event["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert event["Properties"]["BatchSize"] == 10
    # the function changes its own messages' visibility to delay a retry
    role = role_of(pkg.template, "WebhookDelivery")
    [consume] = [s for s in role["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
                 if s["Sid"] == "ConsumeMessages"]
    assert "sqs:ChangeMessageVisibility" in consume["Action"]
    queue = pkg.template["Resources"][res.queue_logical_id("webhook-deliveries")]["Properties"]
    assert queue["RedrivePolicy"]["maxReceiveCount"] > 10  # MAX_ATTEMPTS visits, plus early arrivals
    [age] = [a["Properties"] for a in of_type(pkg.template, "AWS::CloudWatch::Alarm").values()
             if a["Properties"]["MetricName"] == "ApproximateAgeOfOldestMessage"]
    assert age["Dimensions"][0]["Value"] == {"Fn::GetAtt": [res.queue_logical_id("webhook-deliveries"), "QueueName"]}
    assert age["Threshold"] == 900
