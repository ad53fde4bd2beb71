"""Create every table and queue the stack defines that does not exist yet (idempotent).

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
    return created


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


def bootstrap() -> dict:
    return {"tables": create_tables(), "queues": create_queues(), "event_buses": create_event_bus()}
