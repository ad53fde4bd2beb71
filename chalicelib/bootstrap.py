"""Create every table, queue, bus and bucket the stack defines that does not exist yet (idempotent).

Reads the same definitions as `infra/` (the PynamoDB models and `registry.QUEUES`),
so the local stack and the deployed stack cannot drift apart.
"""
from __future__ import annotations

import json

from chalicelib.config import get_settings
from chalicelib.store.base import dynamodb_client
from chalicelib.store.registry import QUEUES, all_models


def ttl_attribute(model) -> str | None:
    from pynamodb.attributes import TTLAttribute

    for name, attr in model.get_attributes().items():
        if isinstance(attr, TTLAttribute):
            return attr.attr_name
    return None


def create_tables() -> list[str]:
    created = []
    client = dynamodb_client()
    for model in all_models():
        if not model.exists():
            model.create_table(wait=True, billing_mode="PAY_PER_REQUEST")
            created.append(model.Meta.table_name)
            ttl = ttl_attribute(model)
            if ttl:
                client.update_time_to_live(TableName=model.Meta.table_name,
                                           TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl})
        else:
            created += add_missing_indexes(model, client)  # a table kept from before (LOYALTY_PERSIST)
    return created


def add_missing_indexes(model, client) -> list[str]:
    """Global secondary indexes a model gained since its table was created (e.g. the members
    table's `by-email`): created on the existing table, one per call as DynamoDB allows."""
    table = model.Meta.table_name or model.table_name()
    have = {i["IndexName"] for i in client.describe_table(TableName=table)["Table"].get("GlobalSecondaryIndexes", [])}
    schema = model._get_schema()
    added = []
    for index in schema.get("global_secondary_indexes") or []:
        if index["index_name"] in have:
            continue
        client.update_table(
            TableName=table, AttributeDefinitions=index["attribute_definitions"],
            GlobalSecondaryIndexUpdates=[{"Create": {"IndexName": index["index_name"], "KeySchema": index["key_schema"],
                                                     "Projection": index["projection"]}}])
        client.get_waiter("table_exists").wait(TableName=table)
        added.append(f"{table}/{index['index_name']}")
    return added


def create_queues() -> list[str]:
    from chalicelib.messaging import sqs_client

    settings = get_settings()
    sqs = sqs_client()
    created = []
    for resource, spec in QUEUES.items():
        name = settings.resource_name(resource)
        dlq_url = sqs.create_queue(QueueName=name + "-dlq")["QueueUrl"]
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        sqs.create_queue(QueueName=name, Attributes={
            "VisibilityTimeout": spec["VisibilityTimeout"],
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": spec["maxReceiveCount"]}),
        })
        created.append(name)
    return created


def create_event_bus() -> list[str]:
    """The domain events bus (`loyalty-{stage}-events`)."""
    from chalicelib.events import bus_name, events_client

    name = bus_name()
    client = events_client()
    if any(b["Name"] == name for b in client.list_event_buses(NamePrefix=name).get("EventBuses", [])):
        return []
    client.create_event_bus(Name=name)
    return [name]


def create_buckets() -> list[str]:
    """The exports bucket (`loyalty-{stage}-exports`): encrypted, private, with the lifecycle
    rules of `store.data.EXPORTS_BUCKET` (the same ones `infra/` deploys)."""
    from chalicelib.clients import s3_client
    from chalicelib.store.data import EXPORTS_BUCKET, lifecycle_rules

    settings = get_settings()
    name = settings.resource_name(EXPORTS_BUCKET["resource"])
    s3 = s3_client()
    if any(b["Name"] == name for b in s3.list_buckets().get("Buckets", [])):
        return []
    if settings.region == "us-east-1":
        s3.create_bucket(Bucket=name)
    else:
        s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": settings.region})
    s3.put_bucket_encryption(Bucket=name, ServerSideEncryptionConfiguration={
        "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]})
    s3.put_public_access_block(Bucket=name, PublicAccessBlockConfiguration={
        "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True, "RestrictPublicBuckets": True})
    s3.put_bucket_lifecycle_configuration(Bucket=name, LifecycleConfiguration={"Rules": lifecycle_rules()})
    return [name]


def bootstrap() -> dict:
    return {"tables": create_tables(), "queues": create_queues(), "event_buses": create_event_bus(),
            "buckets": create_buckets()}
