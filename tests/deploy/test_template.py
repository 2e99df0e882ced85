"""Static checks of deploy/cloudformation/template.yaml: cfn-lint, the resources the design
needs, and least privilege (every IAM statement, per-function action table, self-stop only)."""
from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from autotraining import api
from autotraining.settings import ENV
from autotraining_tools.deploy.template import OUTPUT_SETTINGS, TEMPLATE_PATH, load_template, references

ROOT = Path(__file__).resolve().parents[2]
LOGS = {"logs:CreateLogStream", "logs:PutLogEvents"}

# The exact actions each function's role grants (besides writing its own log group), and why.
FUNCTION_ACTIONS: dict[str, set[str]] = {
    # ingest.accept_records: BatchGetItem (skip ids already stored), BatchWriteItem (chunks of 25)
    "upload": {"dynamodb:BatchGetItem", "dynamodb:BatchWriteItem"},
    # the stream mapping reads the stream with the function's role; recordlog writes the segment,
    # queues one message, reads the queue depth (start threshold) and invokes the starter; the
    # mapping's on-failure destination is sent with the function's role too.
    "stream": {"dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator", "dynamodb:ListStreams",
               "s3:PutObject", "sqs:SendMessage", "sqs:GetQueueAttributes", "lambda:InvokeFunction"},
    # instance.start_if_pending: GetQueueAttributes (work waiting?), DescribeInstances (state), StartInstances
    "starter": {"sqs:GetQueueAttributes", "ec2:DescribeInstances", "ec2:StartInstances"},
    # serving: Registry.latest/get (GetItem), the model files (GetObject)
    "infer": {"dynamodb:GetItem", "s3:GetObject"},
    # Registry.history (Query on the history index), latest/get (GetItem), presigned GET URLs (GetObject)
    "model_proxy": {"dynamodb:GetItem", "dynamodb:Query", "s3:GetObject"},
    # the generator writes through ingest.accept_records like the upload handler
    "generator": {"dynamodb:BatchGetItem", "dynamodb:BatchWriteItem"},
    # the page is static files from the bundle
    "page": set(),
}
# Every function that reads the schema may read the shipped schema object (deploy --schema).
for _module in ("upload", "stream", "infer", "generator", "page"):
    FUNCTION_ACTIONS[_module] = FUNCTION_ACTIONS[_module] | {"s3:GetObject"}

WORKER_ACTIONS = {
    "s3:GetObject", "s3:PutObject",  # artifact install, log segments, models/, state/, staging/
    "s3:DeleteObject",  # staged copies after promotion, a losing round's staged files
    "s3:PutObjectTagging",  # the superseded mark on old states (the lifecycle rule expires them)
    "s3:ListBucket",  # a missing key answers 404 (publish.exists), not 403
    "sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility", "sqs:GetQueueAttributes",
    "dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:PutItem", "dynamodb:UpdateItem",  # registry + commit
    "dynamodb:BatchWriteItem",  # consumed-segment marks, after the commit
    "logs:CreateLogStream", "logs:DescribeLogStreams", "logs:PutLogEvents",  # CloudWatch agent
    "ec2:StopInstances",  # itself only
}
# The documented exceptions to "every resource is one of the stack's own": actions IAM offers
# no resource-level permission for. (Statement Sid, action) pairs, and nothing else, may use "*".
STAR_RESOURCE_EXCEPTIONS = {
    ("ListStreamsHasNoResourceLevelPermission", "dynamodb:ListStreams"),
    ("DescribeInstancesHasNoResourceLevelPermission", "ec2:DescribeInstances"),
}


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template()


def resources_of(template: dict[str, Any], type_: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == type_}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def policy_documents(template: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every permission policy in the template: (owner logical id, document)."""
    for name, res in template["Resources"].items():
        props = res.get("Properties", {})
        if res["Type"] == "AWS::IAM::Role":
            for policy in props.get("Policies", []):
                yield name, policy["PolicyDocument"]
            assert "ManagedPolicyArns" not in props, f"{name} attaches managed policies (not reviewable here)"
        elif res["Type"] in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy", "AWS::S3::BucketPolicy",
                             "AWS::SQS::QueuePolicy"):
            yield name, props["PolicyDocument"]


def statements(template: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [(owner, st) for owner, doc in policy_documents(template) for st in doc["Statement"]]


def role_of_function(template: dict[str, Any], module: str) -> str:
    for res in resources_of(template, "AWS::Lambda::Function").values():
        if res["Properties"]["Handler"] == f"handlers.{module}.handler":
            return res["Properties"]["Role"]["Fn::GetAtt"][0]
    raise AssertionError(f"no function runs handlers.{module}.handler")


def allowed_actions(template: dict[str, Any], role: str) -> set[str]:
    out: set[str] = set()
    for owner, st in statements(template):
        attached = owner == role or (template["Resources"][owner]["Type"] == "AWS::IAM::Policy"
                                     and {"Ref": role} in template["Resources"][owner]["Properties"]["Roles"])
        if attached and st["Effect"] == "Allow":
            out.update(as_list(st["Action"]))
    return out


# ------------------------------------------------------------------ lint

def test_cfn_lint_reports_nothing() -> None:
    cfn_lint = Path(sys.executable).parent / "cfn-lint"  # installed with the dev extras
    proc = subprocess.run([str(cfn_lint), str(TEMPLATE_PATH)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


# ------------------------------------------------------------------ resources

def test_template_has_every_resource_type_of_the_design(template: dict[str, Any]) -> None:
    types = {r["Type"] for r in template["Resources"].values()}
    for needed in ("AWS::DynamoDB::Table", "AWS::S3::Bucket", "AWS::S3::BucketPolicy", "AWS::SQS::Queue",
                   "AWS::Lambda::Function", "AWS::Lambda::EventSourceMapping", "AWS::Lambda::Permission",
                   "AWS::ApiGatewayV2::Api", "AWS::ApiGatewayV2::Integration", "AWS::ApiGatewayV2::Route",
                   "AWS::ApiGatewayV2::Stage", "AWS::Events::Rule", "AWS::EC2::Instance",
                   "AWS::IAM::InstanceProfile", "AWS::IAM::Role", "AWS::CloudWatch::Alarm", "AWS::Logs::LogGroup"):
        assert needed in types, needed


def test_tables_match_the_data_contracts(template: dict[str, Any]) -> None:
    records = template["Resources"]["RecordsTable"]["Properties"]
    models = template["Resources"]["ModelsTable"]["Properties"]
    assert records["KeySchema"] == [{"AttributeName": "id", "KeyType": "HASH"}]
    assert records["AttributeDefinitions"] == [{"AttributeName": "id", "AttributeType": "S"}]
    assert records["StreamSpecification"] == {"StreamViewType": "NEW_IMAGE"}
    assert models["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"}]
    for props in (records, models):
        assert props["BillingMode"] == "PAY_PER_REQUEST"
    for name in ("RecordsTable", "ModelsTable", "DataBucket"):  # updates never lose data or the model
        assert template["Resources"][name]["DeletionPolicy"] == "Retain"
        assert template["Resources"][name]["UpdateReplacePolicy"] == "Retain"


def test_bucket_is_private_encrypted_tls_only_with_log_lifecycle(template: dict[str, Any]) -> None:
    props = template["Resources"]["DataBucket"]["Properties"]
    assert props["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True, "BlockPublicPolicy": True, "IgnorePublicAcls": True, "RestrictPublicBuckets": True}
    assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]
    log_rule = next(r for r in props["LifecycleConfiguration"]["Rules"] if r.get("Prefix") == "log/")
    assert "LogSegmentExpirationDays" in references(log_rule)
    deny = template["Resources"]["DataBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"][0]
    assert deny["Effect"] == "Deny" and deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_bucket_lets_browsers_read_redirected_model_files_and_nothing_more(template: dict[str, Any]) -> None:
    rules = template["Resources"]["DataBucket"]["Properties"]["CorsConfiguration"]["CorsRules"]
    assert [sorted(r["AllowedMethods"]) for r in rules] == [["GET", "HEAD"]]


def test_pending_queue_redrives_to_the_dlq_after_three_receives(template: dict[str, Any]) -> None:
    redrive = template["Resources"]["PendingQueue"]["Properties"]["RedrivePolicy"]
    assert redrive == {"deadLetterTargetArn": {"Fn::GetAtt": ["PendingDeadLetterQueue", "Arn"]}, "maxReceiveCount": 3}


def test_one_function_per_handler_module_with_code_from_s3(template: dict[str, Any]) -> None:
    modules = sorted(p.stem for p in (ROOT / "handlers").glob("*.py") if p.stem != "__init__")
    functions = resources_of(template, "AWS::Lambda::Function")
    handlers = sorted(f["Properties"]["Handler"] for f in functions.values())
    assert handlers == sorted(f"handlers.{m}.handler" for m in set(modules) | set(FUNCTION_ACTIONS))
    env_names = set(ENV.values())
    for name, fn in functions.items():
        props = fn["Properties"]
        assert props["Runtime"] == "python3.11", name
        assert props["Code"] == {"S3Bucket": {"Ref": "CodeBucket"}, "S3Key": {"Ref": "CodeKey"}}, name
        variables = set(props["Environment"]["Variables"])
        assert variables <= env_names, f"{name}: {variables - env_names} not in settings.ENV"
        # Lambda reserves these; the runtime sets the region itself.
        assert not variables & {"AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL"}, name


def test_every_function_has_its_own_role_and_log_group_with_retention(template: dict[str, Any]) -> None:
    functions = resources_of(template, "AWS::Lambda::Function")
    roles = [f["Properties"]["Role"]["Fn::GetAtt"][0] for f in functions.values()]
    assert len(set(roles)) == len(roles)
    profile_roles = [r for p in resources_of(template, "AWS::IAM::InstanceProfile").values()
                     for r in p["Properties"]["Roles"]]
    assert profile_roles == [{"Ref": "WorkerRole"}] and "WorkerRole" not in roles
    for name, fn in functions.items():
        group = fn["Properties"]["LoggingConfig"]["LogGroup"]["Ref"]
        assert template["Resources"][group]["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}, name
    for group in resources_of(template, "AWS::Logs::LogGroup").values():
        assert group["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}


def test_stream_mapping_is_bounded_bisects_and_has_an_on_failure_destination(template: dict[str, Any]) -> None:
    (mapping,) = resources_of(template, "AWS::Lambda::EventSourceMapping").values()
    props = mapping["Properties"]
    assert props["EventSourceArn"] == {"Fn::GetAtt": ["RecordsTable", "StreamArn"]}
    assert props["FunctionName"] == {"Ref": "StreamFunction"}
    assert props["BatchSize"] == {"Ref": "StreamBatchSize"}
    assert props["MaximumBatchingWindowInSeconds"] == {"Ref": "StreamBatchWindowSeconds"}
    assert props["BisectBatchOnFunctionError"] is True
    assert props["MaximumRetryAttempts"] == {"Ref": "StreamMaxRetryAttempts"}
    assert 0 < template["Parameters"]["StreamMaxRetryAttempts"]["MaxValue"] <= 10000  # bounded, never -1 (infinite)
    assert props["DestinationConfig"]["OnFailure"]["Destination"] == {"Fn::GetAtt": ["StreamFailureQueue", "Arn"]}


def test_http_api_routes_are_exactly_api_routes(template: dict[str, Any]) -> None:
    integrations = {name: res["Properties"]["IntegrationUri"]["Fn::GetAtt"][0]
                    for name, res in resources_of(template, "AWS::ApiGatewayV2::Integration").items()}
    functions = {name: res["Properties"]["Handler"].split(".")[1]
                 for name, res in resources_of(template, "AWS::Lambda::Function").items()}
    routes = set()
    for res in resources_of(template, "AWS::ApiGatewayV2::Route").values():
        integration = re.fullmatch(r"integrations/\$\{(\w+)\}", res["Properties"]["Target"]["Fn::Sub"]).group(1)
        method, path = res["Properties"]["RouteKey"].split(" ", 1)
        routes.add((method, path, functions[integrations[integration]]))
    assert routes == set(api.ROUTES)
    for res in resources_of(template, "AWS::ApiGatewayV2::Integration").values():
        assert res["Properties"]["PayloadFormatVersion"] == "2.0"  # the event shape the handlers read


def test_schedules_run_the_starter_and_a_disabled_generator(template: dict[str, Any]) -> None:
    rules = resources_of(template, "AWS::Events::Rule")
    targets = {r["Properties"]["Targets"][0]["Arn"]["Fn::GetAtt"][0]: r["Properties"] for r in rules.values()}
    assert targets["StarterFunction"]["State"] == "ENABLED"
    assert targets["GeneratorFunction"]["State"] == {"Ref": "GeneratorState"}
    assert template["Parameters"]["GeneratorState"]["Default"] == "DISABLED"


def test_instance_uses_the_public_ami_parameter_a_profile_and_installs_the_worker(template: dict[str, Any]) -> None:
    props = template["Resources"]["WorkerInstance"]["Properties"]
    image = template["Parameters"]["ImageId"]
    assert image["Type"] == "AWS::SSM::Parameter::Value<AWS::EC2::Image::Id>"
    assert image["Default"] == "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"
    assert props["InstanceType"] == {"Ref": "InstanceType"}
    assert props["IamInstanceProfile"] == {"Ref": "WorkerInstanceProfile"}
    assert props["MetadataOptions"]["HttpTokens"] == "required"
    user_data = props["UserData"]["Fn::Base64"]["Fn::Sub"]
    assert "scripts-user, always" in user_data  # re-run at every boot: a new artifact key is installed
    assert "/etc/autotraining/worker.env" in user_data and "${WorkerArtifactKey}" in user_data
    assert "installed-artifact" in user_data and "systemd" in user_data
    env_lines = re.findall(r"^(AUTOTRAINING_[A-Z_]+|AWS_[A-Z_]+)=", user_data, flags=re.M)
    assert set(env_lines) <= set(ENV.values()) | {"AWS_REGION"}
    for field in ("records_table", "models_table", "bucket", "queue_url", "instance_id", "worker_artifact",
                  "idle_grace", "region"):
        assert ENV[field] in env_lines, field


def test_alarms_watch_the_dlq_and_worker_errors(template: dict[str, Any]) -> None:
    alarms = resources_of(template, "AWS::CloudWatch::Alarm")
    watched = {json.dumps(a["Properties"].get("Dimensions", [])) + a["Properties"]["MetricName"]
               for a in alarms.values()}
    assert any("PendingDeadLetterQueue" in w for w in watched)
    assert any(w.endswith("WorkerErrors") for w in watched)
    metric_filter = next(iter(resources_of(template, "AWS::Logs::MetricFilter").values()))["Properties"]
    assert metric_filter["LogGroupName"] == {"Ref": "WorkerLogGroup"}


def test_drift_alarm_counts_the_workers_drift_log_event(template: dict[str, Any]) -> None:
    import inspect

    from worker import round as worker_round

    flt = template["Resources"]["DriftMetricFilter"]["Properties"]
    assert flt["LogGroupName"] == {"Ref": "WorkerLogGroup"}
    event = re.search(r'\$\.event = "([^"]+)"', flt["FilterPattern"]).group(1)
    assert f'log.warning("{event}"' in inspect.getsource(worker_round)  # the event the worker really logs
    alarm = template["Resources"]["DriftAlarm"]["Properties"]
    assert alarm["MetricName"] == flt["MetricTransformations"][0]["MetricName"] == "DriftDetected"


def test_outputs_name_everything_settings_need(template: dict[str, Any]) -> None:
    outputs = template["Outputs"]
    for key in ("ApiUrl", "Bucket", "InstanceId", *OUTPUT_SETTINGS):
        assert key in outputs, key
    assert "Fn::GetAtt" not in json.dumps(outputs["ApiUrl"])  # a GetAtt on ApiGatewayV2 breaks moto (NOTES.md)


def test_every_output_is_exported_under_the_stack_name(template: dict[str, Any]) -> None:
    outputs = template["Outputs"]
    assert len(outputs) >= 10
    for key, output in outputs.items():
        # other stacks import them with !ImportValue <stack>-<Output>; the stack name keeps them unique per region
        assert output["Export"] == {"Name": {"Fn::Sub": f"${{AWS::StackName}}-{key}"}}, key


# ------------------------------------------------------------------ least privilege

def _policy_actions_data() -> dict[str, Any]:
    import cfnlint

    return json.loads((Path(cfnlint.__file__).parent / "data" / "AdditionalSpecs" / "Policies.json").read_text())


def test_no_allow_statement_has_a_wildcard_action(template: dict[str, Any]) -> None:
    checked = 0
    for owner, st in statements(template):
        if st["Effect"] != "Allow":
            continue
        for action in as_list(st["Action"]):
            checked += 1
            assert isinstance(action, str) and re.fullmatch(r"[a-z0-9-]+:[A-Za-z0-9]+", action), (owner, action)
        assert "NotAction" not in st and "NotResource" not in st, owner
    assert checked > 30


def test_every_resource_is_the_stacks_own_or_a_documented_exception(template: dict[str, Any]) -> None:
    own = set(template["Resources"]) | {"CodeBucket", "WorkerArtifactKey"}
    no_resource_level = _policy_actions_data()
    for owner, st in statements(template):
        if st["Effect"] != "Allow":
            continue
        for resource in as_list(st["Resource"]):
            if resource == "*":
                for action in as_list(st["Action"]):
                    assert (st.get("Sid"), action) in STAR_RESOURCE_EXCEPTIONS, (owner, st.get("Sid"), action)
                    service, name = action.split(":")
                    # the exception is real: IAM lists no resource type for this action
                    assert no_resource_level[service]["Actions"][name.lower()] == {}, action
                continue
            refs = references(resource)
            assert refs and refs <= own | {"AWS::Partition", "AWS::Region", "AWS::AccountId"}, (owner, resource)
            assert refs & own, (owner, resource)


def test_only_the_tls_deny_uses_a_service_wildcard(template: dict[str, Any]) -> None:
    denies = [(owner, st) for owner, st in statements(template) if st["Effect"] == "Deny"
              and any(action.endswith("*") for action in as_list(st["Action"]))]  # the worker's denies name actions
    assert [owner for owner, _ in denies] == ["DataBucketPolicy"]
    assert denies[0][1]["Action"] == "s3:*" and "aws:SecureTransport" in json.dumps(denies[0][1]["Condition"])


@pytest.mark.parametrize("module", sorted(FUNCTION_ACTIONS))
def test_function_role_grants_exactly_the_actions_its_handler_needs(template: dict[str, Any], module: str) -> None:
    role = role_of_function(template, module)
    assert allowed_actions(template, role) == FUNCTION_ACTIONS[module] | LOGS


@pytest.mark.parametrize("module", sorted(FUNCTION_ACTIONS))
def test_function_writes_only_its_own_log_group(template: dict[str, Any], module: str) -> None:
    role = role_of_function(template, module)
    for owner, st in statements(template):
        if owner == role and set(as_list(st["Action"])) & LOGS:
            assert references(st["Resource"]) & set(template["Resources"]) == {f"{role[:-4]}LogGroup"}


def test_worker_role_grants_exactly_the_workers_actions(template: dict[str, Any]) -> None:
    assert allowed_actions(template, "WorkerRole") == WORKER_ACTIONS


def test_worker_may_stop_only_its_own_instance(template: dict[str, Any]) -> None:
    stops = [(owner, st) for owner, st in statements(template)
             if st["Effect"] == "Allow" and "ec2:StopInstances" in as_list(st["Action"])]
    assert len(stops) == 1
    owner, st = stops[0]
    assert template["Resources"][owner]["Properties"]["Roles"] == [{"Ref": "WorkerRole"}]
    assert as_list(st["Action"]) == ["ec2:StopInstances"]
    assert st["Resource"] == {"Fn::Sub": "arn:${AWS::Partition}:ec2:${AWS::Region}:${AWS::AccountId}:instance/${WorkerInstance}"}


def test_starter_may_start_only_the_worker_instance(template: dict[str, Any]) -> None:
    starts = [(owner, st) for owner, st in statements(template)
              if st["Effect"] == "Allow" and "ec2:StartInstances" in as_list(st["Action"])]
    assert [owner for owner, _ in starts] == ["StarterRole"]
    assert references(starts[0][1]["Resource"]) & set(template["Resources"]) == {"WorkerInstance"}


def test_invoke_permissions_are_scoped_to_this_api_and_these_rules(template: dict[str, Any]) -> None:
    for name, res in resources_of(template, "AWS::Lambda::Permission").items():
        props = res["Properties"]
        refs = references(props["SourceArn"])
        if props["Principal"] == "apigateway.amazonaws.com":
            assert "HttpApi" in refs, name
        else:
            assert props["Principal"] == "events.amazonaws.com" and refs & set(resources_of(template, "AWS::Events::Rule"))


def test_roles_are_assumable_only_by_their_service(template: dict[str, Any]) -> None:
    for name, role in resources_of(template, "AWS::IAM::Role").items():
        (st,) = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
        expected = "ec2.amazonaws.com" if name == "WorkerRole" else "lambda.amazonaws.com"
        assert st == {"Effect": "Allow", "Principal": {"Service": expected}, "Action": "sts:AssumeRole"}, name


def test_user_data_script_is_valid_bash_with_every_reference_defined(template: dict[str, Any], tmp_path: Path) -> None:
    user_data = template["Resources"]["WorkerInstance"]["Properties"]["UserData"]["Fn::Base64"]["Fn::Sub"]
    known = set(template["Resources"]) | set(template["Parameters"]) | {"AWS::Region", "AWS::StackName"}
    names = set(re.findall(r"\$\{([A-Za-z0-9:]+)\}", user_data))
    assert names <= known, names - known  # every ${...} is a Sub reference (shell variables are $NAME)
    rendered = re.sub(r"\$\{[A-Za-z0-9:]+\}", "value", user_data)
    script = rendered.split('Content-Type: text/x-shellscript; charset="us-ascii"', 1)[1].rsplit("--==AUTOTRAINING==--", 1)[0]
    assert script.lstrip().startswith("#!/bin/bash")
    (tmp_path / "user-data.sh").write_text(script)
    proc = subprocess.run(["bash", "-n", str(tmp_path / "user-data.sh")], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    unit = ROOT / "worker" / "systemd" / "autotraining-worker.service"
    text = unit.read_text()  # the unit the script enables reads the files the script writes
    assert "EnvironmentFile=/etc/autotraining/worker.env" in text and "/opt/autotraining/current/venv" in text
    assert "autotraining-worker.service" in script
