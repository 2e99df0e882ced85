"""Create the stack's resources in an emulator and return the settings that name them.

This is the embedded run's stand-in for the CloudFormation stack. (The deploy issue replaces
the body with a deploy of ``deploy/cloudformation/template.yaml`` into the emulator, keeping
this function's signature.)
"""
from __future__ import annotations

import json

from autotraining.aws import Aws
from autotraining.settings import Settings

DLQ_MAX_RECEIVES = 3
QUEUE_VISIBILITY_SECONDS = 120


def provision(aws: Aws, prefix: str = "autotraining") -> Settings:
    """Create tables, bucket, queues and the (stopped) instance; return settings naming them."""
    s = aws.settings
    ddb, s3, sqs, ec2 = aws.dynamodb, aws.s3, aws.sqs, aws.ec2
    records_table, models_table = f"{prefix}-records", f"{prefix}-models"
    ddb.create_table(TableName=records_table, BillingMode="PAY_PER_REQUEST",
                     AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
                     KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
                     StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"})
    ddb.create_table(TableName=models_table, BillingMode="PAY_PER_REQUEST",
                     AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                     KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}])
    bucket = f"{prefix}-data-{aws.settings.region}"
    if s.region == "us-east-1":
        s3.create_bucket(Bucket=bucket)
    else:
        s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": s.region})
    s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration={
        "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True, "RestrictPublicBuckets": True})
    dlq_url = sqs.create_queue(QueueName=f"{prefix}-pending-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    queue_url = sqs.create_queue(QueueName=f"{prefix}-pending", Attributes={
        "VisibilityTimeout": str(QUEUE_VISIBILITY_SECONDS),
        "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(DLQ_MAX_RECEIVES)}),
    })["QueueUrl"]
    image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    instance_id = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1, InstanceType="t3.small",
                                    TagSpecifications=[{"ResourceType": "instance", "Tags": [
                                        {"Key": "Name", "Value": f"{prefix}-worker"}]}])["Instances"][0]["InstanceId"]
    ec2.stop_instances(InstanceIds=[instance_id])
    return s.replace(records_table=records_table, models_table=models_table, bucket=bucket, queue_url=queue_url,
                     dlq_url=dlq_url, instance_id=instance_id, starter_function=f"{prefix}-starter")
