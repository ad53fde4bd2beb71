"""CloudFormation resources of the stack, generated from the definitions the app itself uses.

- Tables: one per PynamoDB model in `chalicelib.store.registry.all_models()`. Keys,
  attribute definitions, secondary indexes, TTL and streams are read from the model
  (PynamoDB's own `Model._get_schema()`, the one `create_table` sends), so a new model
  or index reaches the template without touching this file.
- Queues: `chalicelib.store.registry.QUEUES`, each with a `-dlq` and a redrive policy.
- Per Lambda function (whatever `chalice package` emits): a log group with retention,
  a least-privilege role, and alarms on errors and throttles.

`chalicelib.bootstrap` creates the local stack from the same definitions, so the local
and deployed stacks cannot drift apart. `infra.package` merges all this into chalice's
template.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Optional

APP = "loyalty"
Resources = dict[str, dict[str, Any]]

# Data-plane actions on the tables. Transactions are authorised per item by these same
# actions (TransactWriteItems → PutItem/UpdateItem/DeleteItem/ConditionCheckItem);
# PynamoDB reads the table description once per table (DescribeTable).
TABLE_ACTIONS = [
    "dynamodb:BatchGetItem",
    "dynamodb:BatchWriteItem",
    "dynamodb:ConditionCheckItem",
    "dynamodb:DeleteItem",
    "dynamodb:DescribeTable",
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:Query",
    "dynamodb:Scan",
    "dynamodb:UpdateItem",
]
INDEX_ACTIONS = ["dynamodb:Query", "dynamodb:Scan"]
SEND_ACTIONS = ["sqs:GetQueueAttributes", "sqs:GetQueueUrl", "sqs:SendMessage"]  # SendMessage covers the batch call
CONSUME_ACTIONS = ["sqs:ChangeMessageVisibility", "sqs:DeleteMessage", "sqs:GetQueueAttributes",
                   "sqs:ReceiveMessage"]
LOG_ACTIONS = ["logs:CreateLogStream", "logs:PutLogEvents"]
# X-Ray has no resource-level permissions: AWS requires "Resource": "*" for these two.
XRAY_ACTIONS = ["xray:PutTelemetryRecords", "xray:PutTraceSegments"]

# A scheduled function only creates the job record and hands the job to the jobs queue
# (`chalicelib.jobs.schedules.run_scheduled` → `framework.start`); the jobs worker does
# the work. A schedule that does more needs a wider entry here.
SCHEDULE_TABLES = ("jobs",)
SCHEDULE_QUEUES = ("jobs",)

DLQ_RETENTION_SECONDS = 14 * 24 * 3600  # the SQS maximum: time to inspect and redrive
ALARM_PERIOD_SECONDS = 300


@dataclass(frozen=True)
class StageProfile:
    """What differs between stages beyond `.chalice/config.json` (memory, timeouts, env)."""

    stage: str
    protect_data: bool  # deletion protection and Retain policies on the tables
    log_retention_days: int


def stage_profile(stage: str) -> StageProfile:
    if stage == "prod":
        return StageProfile(stage, protect_data=True, log_retention_days=90)
    return StageProfile(stage, protect_data=False, log_retention_days=14)


def resource_name(stage: str, resource: str) -> str:
    """`loyalty-{stage}-{resource}` (SPEC §5): what `chalicelib.config.Settings.resource_name`
    derives at run time when no override is set, so the functions need only `LOYALTY_STAGE`."""
    return f"{APP}-{stage}-{resource}"


def logical_id(*parts: str) -> str:
    """`logical_id("tier-history", "Table")` → `TierHistoryTable`."""
    words = [w for part in parts for w in re.split(r"[^A-Za-z0-9]+", part) if w]
    return "".join(w[:1].upper() + w[1:] for w in words)


def kebab(name: str) -> str:
    """`APIHandler` → `api-handler`, `ScoreRfm` → `score-rfm`."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "-", name).lower()


def ref(name: str) -> dict:
    return {"Ref": name}


def arn(name: str) -> dict:
    return {"Fn::GetAtt": [name, "Arn"]}


def tags(profile: StageProfile) -> list[dict]:
    return [{"Key": "app", "Value": APP}, {"Key": "stage", "Value": profile.stage}]


# --- tables ------------------------------------------------------------------------

def ttl_attribute(model) -> Optional[str]:
    from chalicelib.bootstrap import ttl_attribute as model_ttl

    return model_ttl(model)


def _key_schema(keys: Iterable[Mapping[str, str]]) -> list[dict]:
    # CloudFormation wants HASH before RANGE; PynamoDB lists them in attribute order.
    ordered = sorted(keys, key=lambda k: k["KeyType"] != "HASH")
    return [{"AttributeName": k["AttributeName"], "KeyType": k["KeyType"]} for k in ordered]


def _index(index: Mapping[str, Any]) -> dict:
    projection = {"ProjectionType": index["projection"]["ProjectionType"]}
    if index["projection"].get("NonKeyAttributes"):
        projection["NonKeyAttributes"] = list(index["projection"]["NonKeyAttributes"])
    return {"IndexName": index["index_name"], "KeySchema": _key_schema(index["key_schema"]),
            "Projection": projection}


def table_schema(model) -> dict:
    """AttributeDefinitions, KeySchema and secondary indexes in CloudFormation's shape."""
    schema = model._get_schema()
    gsis = schema.get("global_secondary_indexes") or []
    lsis = schema.get("local_secondary_indexes") or []
    types: dict[str, str] = {}
    for index_or_table in [schema, *gsis, *lsis]:
        for d in index_or_table["attribute_definitions"]:
            seen = types.setdefault(d["AttributeName"], d["AttributeType"])
            if seen != d["AttributeType"]:
                raise ValueError(f"{model.__name__}: key attribute {d['AttributeName']!r} has two types")
    props: dict[str, Any] = {
        "AttributeDefinitions": [{"AttributeName": n, "AttributeType": t} for n, t in sorted(types.items())],
        "KeySchema": _key_schema(schema["key_schema"]),
    }
    if gsis:
        props["GlobalSecondaryIndexes"] = [_index(i) for i in sorted(gsis, key=lambda i: i["index_name"])]
    if lsis:
        props["LocalSecondaryIndexes"] = [_index(i) for i in sorted(lsis, key=lambda i: i["index_name"])]
    return props


def has_indexes(model) -> bool:
    return bool(model._indexes)


def table_logical_id(model) -> str:
    return logical_id(model.Meta.resource, "Table")


def table_resource(model, profile: StageProfile) -> dict:
    resource = getattr(model.Meta, "resource", "")
    if not resource:
        raise ValueError(f"{model.__name__}.Meta.resource is empty: every table needs a resource name")
    props: dict[str, Any] = {
        "TableName": resource_name(profile.stage, resource),
        "BillingMode": "PAY_PER_REQUEST",
        **table_schema(model),
        "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
        "DeletionProtectionEnabled": profile.protect_data,
        "Tags": tags(profile),
    }
    ttl = ttl_attribute(model)
    if ttl:
        props["TimeToLiveSpecification"] = {"AttributeName": ttl, "Enabled": True}
    stream = getattr(model.Meta, "stream_view_type", None)
    if stream:
        props["StreamSpecification"] = {"StreamViewType": stream}
    policy = "Retain" if profile.protect_data else "Delete"
    return {"Type": "AWS::DynamoDB::Table", "DeletionPolicy": policy, "UpdateReplacePolicy": policy,
            "Properties": props}


def table_resources(models: Iterable, profile: StageProfile) -> Resources:
    out: Resources = {}
    for model in models:
        resource = table_resource(model, profile)
        lid = table_logical_id(model)
        if lid in out:
            raise ValueError(f"two models use the table resource {model.Meta.resource!r}")
        out[lid] = resource
    return out


# --- queues ------------------------------------------------------------------------

def queue_logical_id(resource: str) -> str:
    return logical_id(resource, "Queue")


def dlq_logical_id(resource: str) -> str:
    return logical_id(resource, "DeadLetterQueue")


def _queue_attribute(value: Any) -> Any:
    return int(value) if isinstance(value, str) and value.isdigit() else value


def queue_resources(queues: Mapping[str, Mapping[str, Any]], profile: StageProfile) -> Resources:
    """Each queue with its `-dlq`: `maxReceiveCount` goes into the redrive policy, every
    other key of the registry entry is a queue property (`VisibilityTimeout`, ...)."""
    out: Resources = {}
    for resource, spec in queues.items():
        name = resource_name(profile.stage, resource)
        qid, dlqid = queue_logical_id(resource), dlq_logical_id(resource)
        out[dlqid] = {"Type": "AWS::SQS::Queue", "Properties": {
            "QueueName": name + "-dlq",
            "MessageRetentionPeriod": DLQ_RETENTION_SECONDS,
            "SqsManagedSseEnabled": True,
            # Built from the name, not GetAtt, to avoid a queue <-> DLQ dependency cycle.
            "RedriveAllowPolicy": {"redrivePermission": "byQueue", "sourceQueueArnList": [
                {"Fn::Sub": "arn:${AWS::Partition}:sqs:${AWS::Region}:${AWS::AccountId}:" + name}]},
            "Tags": tags(profile),
        }}
        props: dict[str, Any] = {"QueueName": name}
        props.update({k: _queue_attribute(v) for k, v in spec.items() if k != "maxReceiveCount"})
        props.update({
            "SqsManagedSseEnabled": True,
            "RedrivePolicy": {"deadLetterTargetArn": arn(dlqid), "maxReceiveCount": int(spec["maxReceiveCount"])},
            "Tags": tags(profile),
        })
        out[qid] = {"Type": "AWS::SQS::Queue", "Properties": props}
    return out


def queue_outputs(queues: Iterable[str]) -> dict:
    out = {}
    for resource in queues:
        for lid in (queue_logical_id(resource), dlq_logical_id(resource)):
            out[lid + "Url"] = {"Value": ref(lid)}
            out[lid + "Arn"] = {"Value": arn(lid)}
    return out


# --- parameters: JWT settings of the user pool, alarm e-mail -----------------------

def parameters() -> dict:
    return {
        "JwtIssuer": {
            "Type": "String",
            "AllowedPattern": r"^https://\S+[^/]$",
            "Description": "Token issuer (`iss`), e.g. https://cognito-idp.<region>.amazonaws.com/<user pool id>",
        },
        "JwtAudience": {
            "Type": "String",
            "Default": "",
            "Description": "Expected `aud` (the Cognito app client id when clients send ID tokens); "
                           "empty: not checked (Cognito access tokens carry no `aud`)",
        },
        "JwksUrl": {
            "Type": "String",
            "Default": "",
            "AllowedPattern": r"^(https://\S+)?$",
            "Description": "JWKS URL; empty: <JwtIssuer>/.well-known/jwks.json (Cognito's)",
        },
        "AlarmEmail": {
            "Type": "String",
            "Default": "",
            "Description": "E-mail address subscribed to the alarm topic; empty: no subscription",
        },
    }


def conditions() -> dict:
    return {
        "HasJwksUrl": {"Fn::Not": [{"Fn::Equals": [ref("JwksUrl"), ""]}]},
        "HasAlarmEmail": {"Fn::Not": [{"Fn::Equals": [ref("AlarmEmail"), ""]}]},
    }


def jwt_environment() -> dict:
    """The variables `chalicelib.config.get_settings` reads for token verification."""
    return {
        "LOYALTY_JWKS_URL": {"Fn::If": ["HasJwksUrl", ref("JwksUrl"),
                                        {"Fn::Sub": "${JwtIssuer}/.well-known/jwks.json"}]},
        "LOYALTY_JWT_ISSUER": ref("JwtIssuer"),
        "LOYALTY_JWT_AUDIENCE": ref("JwtAudience"),
    }


# --- alarms ------------------------------------------------------------------------

ALARM_TOPIC = "AlarmTopic"


def alarm_topic_resources(profile: StageProfile) -> Resources:
    return {
        ALARM_TOPIC: {"Type": "AWS::SNS::Topic", "Properties": {
            "TopicName": resource_name(profile.stage, "alarms"), "Tags": tags(profile)}},
        "AlarmEmailSubscription": {"Type": "AWS::SNS::Subscription", "Condition": "HasAlarmEmail", "Properties": {
            "TopicArn": ref(ALARM_TOPIC), "Protocol": "email", "Endpoint": ref("AlarmEmail")}},
    }


def alarm(name: str, description: str, namespace: str, metric: str, dimensions: list[dict],
          statistic: str = "Sum", threshold: int = 0) -> dict:
    """Alarm as soon as the metric goes above `threshold` in a 5-minute period."""
    return {"Type": "AWS::CloudWatch::Alarm", "Properties": {
        "AlarmName": name,
        "AlarmDescription": description,
        "Namespace": namespace,
        "MetricName": metric,
        "Dimensions": dimensions,
        "Statistic": statistic,
        "Period": ALARM_PERIOD_SECONDS,
        "EvaluationPeriods": 1,
        "Threshold": threshold,
        "ComparisonOperator": "GreaterThanThreshold",
        "TreatMissingData": "notBreaching",
        "AlarmActions": [ref(ALARM_TOPIC)],
        "OKActions": [ref(ALARM_TOPIC)],
    }}


def dlq_alarms(queues: Iterable[str], profile: StageProfile) -> Resources:
    out: Resources = {}
    for resource in queues:
        dlqid = dlq_logical_id(resource)
        out[dlqid + "DepthAlarm"] = alarm(
            resource_name(profile.stage, resource) + "-dlq-depth",
            f"Messages in the {resource} dead-letter queue: they failed maxReceiveCount times; "
            "inspect, fix, then redrive them",
            "AWS/SQS", "ApproximateNumberOfMessagesVisible",
            [{"Name": "QueueName", "Value": {"Fn::GetAtt": [dlqid, "QueueName"]}}], statistic="Maximum")
    return out


# Queues whose consumer answers `batchItemFailures` (the SQS event source reports them), and
# queues whose oldest message pages when it waits longer than this many seconds.
PARTIAL_BATCH_QUEUES = ("webhook-deliveries",)
AGE_ALARM_SECONDS = {"webhook-deliveries": 900}


def age_alarms(queues: Iterable[str], profile: StageProfile) -> Resources:
    """Delivery age: a message due now that no consumer took for AGE_ALARM_SECONDS (a retry's
    message is invisible while it waits, so it does not count)."""
    out: Resources = {}
    for resource in queues:
        if resource in AGE_ALARM_SECONDS:
            out[queue_logical_id(resource) + "AgeAlarm"] = alarm(
                resource_name(profile.stage, resource) + "-age",
                f"The oldest {resource} message waited more than {AGE_ALARM_SECONDS[resource]} s: its "
                "consumer is failing or falling behind",
                "AWS/SQS", "ApproximateAgeOfOldestMessage",
                [{"Name": "QueueName", "Value": {"Fn::GetAtt": [queue_logical_id(resource), "QueueName"]}}],
                statistic="Maximum", threshold=AGE_ALARM_SECONDS[resource])
    return out


# --- functions: log group, role, alarms --------------------------------------------

@dataclass(frozen=True)
class Access:
    """What one function may touch: tables and queues by registry resource name."""

    tables: tuple[str, ...]
    send: tuple[str, ...]
    consume: tuple[str, ...] = ()
    tracing: bool = False


def function_access(events: Mapping[str, Any], consumed: Iterable[str], tables: Iterable[str],
                    queues: Iterable[str], tracing: bool = False) -> Access:
    """Scheduled functions: the jobs table and queue. Queue consumers: every table, their
    queue, and sending to the other queues. Everything else (the API handler and any
    function chalice emits later): every table, sending to every queue."""
    tables, queues, consumed = tuple(tables), tuple(queues), tuple(consumed)
    kinds = {e.get("Type") for e in events.values()}
    if kinds == {"Schedule"}:
        return Access(SCHEDULE_TABLES, SCHEDULE_QUEUES, (), tracing)
    if consumed:
        return Access(tables, tuple(q for q in queues if q not in consumed), consumed, tracing)
    return Access(tables, queues, (), tracing)


def role_resource(log_group_id: str, access: Access, indexed_tables: Iterable[str]) -> dict:
    indexed = set(indexed_tables)
    statements: list[dict] = [{"Sid": "Logs", "Effect": "Allow", "Action": LOG_ACTIONS,
                               "Resource": arn(log_group_id)}]
    if access.tables:
        statements.append({"Sid": "Tables", "Effect": "Allow", "Action": TABLE_ACTIONS,
                           "Resource": [arn(logical_id(t, "Table")) for t in access.tables]})
        index_arns = [{"Fn::Sub": "${%s.Arn}/index/*" % logical_id(t, "Table")}
                      for t in access.tables if t in indexed]
        if index_arns:
            statements.append({"Sid": "Indexes", "Effect": "Allow", "Action": INDEX_ACTIONS,
                               "Resource": index_arns})
    if access.send:
        statements.append({"Sid": "SendMessages", "Effect": "Allow", "Action": SEND_ACTIONS,
                           "Resource": [arn(queue_logical_id(q)) for q in access.send]})
    if access.consume:
        statements.append({"Sid": "ConsumeMessages", "Effect": "Allow", "Action": CONSUME_ACTIONS,
                           "Resource": [arn(queue_logical_id(q)) for q in access.consume]})
    if access.tracing:
        statements.append({"Sid": "Tracing", "Effect": "Allow", "Action": XRAY_ACTIONS, "Resource": "*"})
    return {"Type": "AWS::IAM::Role", "Properties": {
        "AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]},
        "Policies": [{"PolicyName": "least-privilege",
                      "PolicyDocument": {"Version": "2012-10-17", "Statement": statements}}],
    }}


# The outbox relay (app.outbox_relay): the outbox table's stream → the campaign queue. Rows are
# deleted only after they were sent, and the hourly sweep re-sends what a failed batch left, so
# a batch that exhausts its retries is late, never lost.
OUTBOX_RELAY_FUNCTION = "OutboxRelay"
STREAM_ACTIONS = ["dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator",
                  "dynamodb:ListStreams"]


def outbox_stream_event() -> dict:
    return {"OutboxStream": {"Type": "DynamoDB", "Properties": {
        "Stream": {"Fn::GetAtt": [logical_id("outbox", "Table"), "StreamArn"]},
        "StartingPosition": "TRIM_HORIZON", "BatchSize": 100, "MaximumBatchingWindowInSeconds": 1,
        "MaximumRetryAttempts": 10, "BisectBatchOnFunctionError": True,
        "FunctionResponseTypes": ["ReportBatchItemFailures"]}}}


EVENT_BUS = "EventsBus"


def event_bus_resources(profile: StageProfile) -> Resources:
    """The domain events bus: every committed effect is published here (source `loyalty`)."""
    return {EVENT_BUS: {"Type": "AWS::Events::EventBus", "Properties": {
        "Name": resource_name(profile.stage, "events"), "Tags": tags(profile)}}}


def function_resources(function_id: str, function_name: str, access: Access, indexed_tables: Iterable[str],
                       profile: StageProfile, stream_tables: Iterable[str] = (),
                       publishes_events: bool = False) -> Resources:
    """Log group, role and alarms of one function (`function_id` is its logical id)."""
    log_group_id = function_id + "LogGroup"
    dims = [{"Name": "FunctionName", "Value": ref(function_id)}]
    role = role_resource(log_group_id, access, indexed_tables)
    if publishes_events:
        role["Properties"]["Policies"][0]["PolicyDocument"]["Statement"].append(
            {"Sid": "PublishEvents", "Effect": "Allow", "Action": ["events:PutEvents"], "Resource": [arn(EVENT_BUS)]})
    if stream_tables:
        role["Properties"]["Policies"][0]["PolicyDocument"]["Statement"].append(
            {"Sid": "Streams", "Effect": "Allow", "Action": STREAM_ACTIONS,
             "Resource": [{"Fn::GetAtt": [logical_id(t, "Table"), "StreamArn"]} for t in stream_tables]})
    return {
        log_group_id: {"Type": "AWS::Logs::LogGroup", "Properties": {
            "LogGroupName": "/aws/lambda/" + function_name, "RetentionInDays": profile.log_retention_days}},
        function_id + "Role": role,
        function_id + "ErrorsAlarm": alarm(
            function_name + "-errors", f"{function_name} raised errors (see its log group)",
            "AWS/Lambda", "Errors", dims),
        function_id + "ThrottlesAlarm": alarm(
            function_name + "-throttles", f"{function_name} was throttled (account or reserved concurrency)",
            "AWS/Lambda", "Throttles", dims),
    }


# --- the exports bucket (SPEC 2.17, docs/DATA.md) -----------------------------------------

EXPORTS_BUCKET_ID = "ExportsBucket"
JOBS_WORKER_FUNCTION = "JobsWorker"
API_FUNCTION = "APIHandler"
# The jobs worker writes exports (a multipart upload is PutObject's, aborting and listing its
# parts have their own actions) and reads import files; the API handler only reads: it signs
# the download URLs (a pre-signed URL carries the signer's rights) and checks that an import's
# object exists.
EXPORTS_WRITE_ACTIONS = ["s3:AbortMultipartUpload", "s3:GetObject", "s3:ListMultipartUploadParts", "s3:PutObject"]
EXPORTS_READ_ACTIONS = ["s3:GetObject"]


def exports_bucket_resources(profile: StageProfile) -> Resources:
    """`loyalty-{stage}-exports`: encrypted, never public, objects gone after the lifecycle's
    days (exports hold personal data), unfinished multipart uploads aborted; TLS only."""
    from chalicelib.store.data import EXPORTS_BUCKET

    retain = "Retain" if profile.protect_data else "Delete"
    bucket = {"Type": "AWS::S3::Bucket", "DeletionPolicy": retain, "UpdateReplacePolicy": retain, "Properties": {
        "BucketName": resource_name(profile.stage, EXPORTS_BUCKET["resource"]),
        "BucketEncryption": {"ServerSideEncryptionConfiguration": [
            {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}, "BucketKeyEnabled": True}]},
        "PublicAccessBlockConfiguration": {"BlockPublicAcls": True, "BlockPublicPolicy": True,
                                           "IgnorePublicAcls": True, "RestrictPublicBuckets": True},
        "OwnershipControls": {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]},
        "LifecycleConfiguration": {"Rules": [{
            "Id": "expire-exports", "Status": "Enabled", "ExpirationInDays": EXPORTS_BUCKET["expire_days"],
            "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": EXPORTS_BUCKET["abort_multipart_days"]}}]},
        "Tags": tags(profile)}}
    policy = {"Type": "AWS::S3::BucketPolicy", "Properties": {"Bucket": ref(EXPORTS_BUCKET_ID), "PolicyDocument": {
        "Version": "2012-10-17", "Statement": [{
            "Sid": "TlsOnly", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
            "Resource": [arn(EXPORTS_BUCKET_ID), {"Fn::Sub": "${%s.Arn}/*" % EXPORTS_BUCKET_ID}],
            "Condition": {"Bool": {"aws:SecureTransport": "false"}}}]}}}
    return {EXPORTS_BUCKET_ID: bucket, EXPORTS_BUCKET_ID + "Policy": policy}


def exports_statements(function_id: str) -> list[dict]:
    """The exports bucket's grants of one function: the jobs worker writes, the API reads."""
    actions = {JOBS_WORKER_FUNCTION: EXPORTS_WRITE_ACTIONS, API_FUNCTION: EXPORTS_READ_ACTIONS}.get(function_id)
    if not actions:
        return []
    return [{"Sid": "Exports", "Effect": "Allow", "Action": actions,
             "Resource": [{"Fn::Sub": "${%s.Arn}/*" % EXPORTS_BUCKET_ID}]}]


# --- API Gateway's own answers ------------------------------------------------------

# What API Gateway answers before the app runs (an unknown path or method arrives as
# MISSING_AUTHENTICATION_TOKEN; throttling, a Lambda failure or timeout...) leaves in the
# app's error shape (SPEC 4.2). The bodies are constant: nothing the client sent
# (a token, a path) is echoed back.
GATEWAY_RESPONSES: dict[str, tuple[str, str, str]] = {
    # response type: (status, error code, message)
    "MISSING_AUTHENTICATION_TOKEN": ("404", "NOT_FOUND", "no such route"),
    "RESOURCE_NOT_FOUND": ("404", "NOT_FOUND", "no such route"),
    "UNAUTHORIZED": ("401", "UNAUTHENTICATED", "a valid bearer token is required"),
    "ACCESS_DENIED": ("403", "FORBIDDEN", "this token may not do that"),
    "INVALID_SIGNATURE": ("403", "FORBIDDEN", "this token may not do that"),
    "EXPIRED_TOKEN": ("401", "UNAUTHENTICATED", "a valid bearer token is required"),
    "BAD_REQUEST_BODY": ("400", "VALIDATION_ERROR", "the request is not valid"),
    "BAD_REQUEST_PARAMETERS": ("400", "VALIDATION_ERROR", "the request is not valid"),
    "REQUEST_TOO_LARGE": ("400", "VALIDATION_ERROR", "the request body is too large"),
    "UNSUPPORTED_MEDIA_TYPE": ("400", "VALIDATION_ERROR", "the request is not valid"),
    "QUOTA_EXCEEDED": ("503", "RETRY_LATER", "the service is busy; retry the same request"),
    "THROTTLED": ("503", "RETRY_LATER", "the service is busy; retry the same request"),
    "INTEGRATION_FAILURE": ("503", "RETRY_LATER", "the service is busy; retry the same request"),
    "INTEGRATION_TIMEOUT": ("503", "RETRY_LATER", "the service is busy; retry the same request"),
    "DEFAULT_4XX": ("", "VALIDATION_ERROR", "the request is not valid"),
    "DEFAULT_5XX": ("", "RETRY_LATER", "the service is busy; retry the same request"),
}


def gateway_responses(rest_api_id: str = "RestAPI") -> Resources:
    """AWS::ApiGateway::GatewayResponse per type of GATEWAY_RESPONSES, on chalice's RestAPI.
    DEFAULT_4XX/5XX keep API Gateway's own status (none is set) and change only the body."""
    out: Resources = {}
    for kind, (status, code, message) in GATEWAY_RESPONSES.items():
        body = '{"error":{"code":"%s","message":"%s","details":{}}}' % (code, message)
        props: dict[str, Any] = {
            "RestApiId": ref(rest_api_id),
            "ResponseType": kind,
            "ResponseTemplates": {"application/json": body},
            "ResponseParameters": {"gatewayresponse.header.Content-Type": "'application/json'"},
        }
        if status:
            props["StatusCode"] = status
        out[logical_id("GatewayResponse", kind.title().replace("_", ""))] = {
            "Type": "AWS::ApiGateway::GatewayResponse", "Properties": props}
    return out
