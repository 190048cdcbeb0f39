"""deploy/template.yaml deployed through CloudFormation into moto (server mode), then used.

The SAM transform is expanded locally by aws-sam-translator (what `sam deploy`
has CloudFormation do), and the result is created as a stack. Resource types
moto's CloudFormation cannot create are listed in UNSUPPORTED and dropped, and
nothing else; bucket properties it accepts but does not apply are applied
through the S3 API from the template's own values. Then a workbook is uploaded
under the upload prefix of the stack's bucket, a real `datalakep worker`
process runs with the function's environment as the stack set it, and the
rows must be in the warehouse: the notification filter, the queue, its DLQ
and the variable names are the template's, not the test's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import duckdb
import pytest
import yaml
from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse

from devtools.sample import generate_passengers, write_workbook
from infrastructure.aws.clients import aws_client
from infrastructure.aws.events import parse_event

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "deploy" / "template.yaml"
STACK = "datalakep-test"
BUCKET = "datalakep-landing-test"

# Resource types moto's CloudFormation does not create, each dropped with its reason.
UNSUPPORTED = {
    "AWS::SQS::QueuePolicy": "not modelled by moto (moto does not enforce policies)",
    "AWS::CloudWatch::Alarm": "not modelled by moto's CloudFormation",
    "AWS::AutoScaling::ScalingPolicy": "not modelled by moto's CloudFormation",
    "AWS::SNS::Subscription": "not modelled by moto's CloudFormation",
    "AWS::SecretsManager::Secret": "not modelled by moto's CloudFormation; the test "
    "passes ExistingWarehouseSecretArn instead",
    "AWS::Lambda::EventSourceMapping": "moto would run the function's image in Docker on "
    "each message; the worker process stands in for it",
}
# AWS::S3::Bucket properties moto's CloudFormation accepts but does not apply.
BUCKET_PROPERTIES_APPLIED_BY_API = ("NotificationConfiguration", "VersioningConfiguration")


class NoManagedPolicies:
    """The template names no AWS managed policy, so the translator must never load one."""

    def load(self) -> dict[str, str]:
        raise AssertionError("the template must not use managed policies")


def expanded(parameters: dict[str, str]) -> dict[str, Any]:
    sam = yaml_parse(TEMPLATE.read_text())
    template: dict[str, Any] = transform(sam, dict(parameters), NoManagedPolicies())
    resources = template["Resources"]
    dropped = {name for name, r in resources.items() if r["Type"] in UNSUPPORTED}
    for name in dropped:
        del resources[name]
    for resource in resources.values():
        depends = resource.get("DependsOn")
        if isinstance(depends, str):
            depends = [depends]
        if depends is not None:
            resource["DependsOn"] = [d for d in depends if d not in dropped]
    return template


def resolve(value: Any, parameters: dict[str, str], physical: dict[str, str]) -> Any:
    """The few intrinsics the bucket's notification uses: Ref and a queue's Arn."""
    if isinstance(value, dict) and "Ref" in value:
        return parameters.get(value["Ref"]) or physical[value["Ref"]]
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        name, attribute = value["Fn::GetAtt"]
        assert attribute == "Arn", attribute
        return queue_arn(physical[name])
    if isinstance(value, dict):
        return {k: resolve(v, parameters, physical) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(v, parameters, physical) for v in value]
    return value


def queue_arn(url: str) -> str:
    attributes = aws_client("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
    return str(attributes["Attributes"]["QueueArn"])


def apply_bucket_properties(
    bucket: dict[str, Any], parameters: dict[str, str], physical: dict[str, str]
) -> None:
    properties = resolve(
        {k: bucket["Properties"][k] for k in BUCKET_PROPERTIES_APPLIED_BY_API}, parameters, physical
    )
    s3 = aws_client("s3")
    s3.put_bucket_versioning(
        Bucket=BUCKET, VersioningConfiguration=properties["VersioningConfiguration"]
    )
    s3.put_bucket_notification_configuration(
        Bucket=BUCKET,
        NotificationConfiguration={
            "QueueConfigurations": [
                {
                    "QueueArn": q["Queue"],
                    "Events": [q["Event"]],
                    "Filter": {"Key": {"FilterRules": q["Filter"]["S3Key"]["Rules"]}},
                }
                for q in properties["NotificationConfiguration"]["QueueConfigurations"]
            ]
        },
    )


def deploy(parameters: dict[str, str]) -> tuple[dict[str, Any], dict[str, str], dict[str, str]]:
    """(expanded template, outputs, physical ids) of the stack, created and complete."""
    template = expanded(parameters)
    cloudformation = aws_client("cloudformation")
    cloudformation.create_stack(
        StackName=STACK,
        TemplateBody=json.dumps(template),
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
        Capabilities=["CAPABILITY_IAM"],
    )
    stack = cloudformation.describe_stacks(StackName=STACK)["Stacks"][0]
    assert stack["StackStatus"] == "CREATE_COMPLETE", stack.get("StackStatusReason")
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}
    resources = cloudformation.describe_stack_resources(StackName=STACK)["StackResources"]
    physical = {r["LogicalResourceId"]: r.get("PhysicalResourceId", "") for r in resources}
    # Every parameter's value, the defaults included, as the stack resolved them.
    values = {p["ParameterKey"]: p["ParameterValue"] for p in stack["Parameters"]}
    apply_bucket_properties(template["Resources"]["LandingBucket"], values, physical)
    return template, outputs, physical


def stack_parameters() -> dict[str, str]:
    secret = aws_client("secretsmanager").create_secret(
        Name="datalakep/warehouse", SecretString='{"password": "unused-by-duckdb"}'
    )
    ec2 = aws_client("ec2")
    vpc = ec2.describe_vpcs(Filters=[{"Name": "isDefault", "Values": ["true"]}])["Vpcs"][0]
    subnets = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc["VpcId"]]}])
    return {
        "BucketName": BUCKET,
        "ImageTag": "test",
        "WarehouseUrl": "redshift://datalakep@warehouse.example.com:5439/dev",
        "ExistingWarehouseSecretArn": secret["ARN"],
        "WorkerVpcId": vpc["VpcId"],
        "WorkerSubnetIds": subnets["Subnets"][0]["SubnetId"],
    }


def upload(tmp_path: Path, key: str, start: int, rows: int) -> None:
    path = tmp_path / f"{start}.xlsx"
    write_workbook(generate_passengers("train_data", rows, seed=start, start_id=start), path)
    aws_client("s3").upload_file(str(path), BUCKET, key)


def run_worker(queue_url: str, environment: dict[str, str]) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "entrypoints.cli", "worker", "--queue-url", queue_url]
    return subprocess.run(
        [*command, "--until-empty"],
        env=environment,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def short_poll_config(tmp_path: Path) -> Path:
    config = yaml.safe_load((ROOT / "config" / "datalakep.yaml").read_text())
    config["worker"]["wait_seconds"] = 1
    path = tmp_path / "datalakep.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def queue_attributes(url: str) -> dict[str, str]:
    sqs = aws_client("sqs")
    return dict(sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"])


def loaded_ids(db: Path) -> list[int]:
    with duckdb.connect(str(db), read_only=True) as con:
        rows = con.execute('SELECT "PassengerId" FROM train_data ORDER BY 1').fetchall()
    return [int(r[0]) for r in rows]


def test_the_template_deploys_and_its_wiring_loads_uploads_and_reconciles(
    aws: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, outputs, physical = deploy(stack_parameters())
    function = aws_client("lambda").get_function_configuration(FunctionName=outputs["FunctionArn"])
    db = tmp_path / "warehouse.duckdb"
    # The function's variables as the stack set them, with a local warehouse in
    # place of the Redshift URL and a config whose long poll is 1 s, not 20.
    variables = {
        **function["Environment"]["Variables"],
        "DATALAKEP_WAREHOUSE": f"duckdb:///{db}",
        "DATALAKEP_CONFIG": str(short_poll_config(tmp_path)),
    }
    upload(tmp_path, "incoming/2026/passengers.xlsx", start=1, rows=50)
    upload(tmp_path, "elsewhere/not-an-upload.xlsx", start=1001, rows=5)

    worker = run_worker(outputs["WorkQueueUrl"], {**os.environ, **variables})

    assert worker.returncode == 0, worker.stderr
    assert loaded_ids(db) == list(range(1, 51))
    work, dlq = queue_attributes(outputs["WorkQueueUrl"]), outputs["WorkDeadLetterQueueUrl"]
    assert json.loads(work["RedrivePolicy"]) == {
        "deadLetterTargetArn": queue_arn(dlq),
        "maxReceiveCount": 5,
    }
    assert int(work["VisibilityTimeout"]) == 6 * function["Timeout"]
    assert int(queue_attributes(dlq)["ApproximateNumberOfMessages"]) == 0
    assert variables["DATALAKEP_WORKER_QUEUE_URL"] == outputs["HeavyQueueUrl"]
    assert physical["LandingBucket"] == outputs["BucketName"] == BUCKET

    # The daily schedule: S3 loses a notification, and the rule's own event, sent
    # through the handler's reconcile route, puts it back on the work queue.
    # (tests/e2e/test_reconcile.py has the worker load such an event.)
    upload(tmp_path, "incoming/lost.xlsx", start=101, rows=20)
    sqs = aws_client("sqs")
    lost = sqs.receive_message(QueueUrl=outputs["WorkQueueUrl"], WaitTimeSeconds=1)["Messages"]
    sqs.delete_message(QueueUrl=outputs["WorkQueueUrl"], ReceiptHandle=lost[0]["ReceiptHandle"])
    rule = physical["IngestFunctionDailyReconcile"]
    (target,) = aws_client("events").list_targets_by_rule(Rule=rule)["Targets"]
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    import entrypoints.lambda_handler as lambda_handler

    result = lambda_handler.handler(json.loads(target["Input"]), None)

    assert target["Arn"] == outputs["FunctionArn"]
    assert result["missing"] == [f"s3://{BUCKET}/incoming/lost.xlsx"]
    assert result["enqueued"] == 1
    resent = sqs.receive_message(QueueUrl=outputs["WorkQueueUrl"], WaitTimeSeconds=1)["Messages"]
    assert [o.uri for o in parse_event(resent[0]["Body"]).objects] == [
        f"s3://{BUCKET}/incoming/lost.xlsx"
    ]
