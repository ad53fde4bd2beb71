"""Infrastructure as code: CloudFormation generated from the app's own table and queue
definitions and merged with `chalice package` output (`python -m infra.package`)."""
