"""Published on-demand AWS prices the cost estimate uses: one table, one date, one region.

Prices are US East (N. Virginia) list prices in USD as the public pricing pages of each service
gave them on ``AS_OF`` (free tiers ignored), entered by hand: the machines this project is built
on cannot reach those pages, so they were not re-read when this table was written. Prices change:
check them on the pages in ``SOURCES`` and update this one file (with its date) rather than any
caller.
"""
from __future__ import annotations

AS_OF = "2025-06-01"
REGION = "us-east-1"

SOURCES = {
    "api_gateway": "https://aws.amazon.com/api-gateway/pricing/",
    "dynamodb": "https://aws.amazon.com/dynamodb/pricing/on-demand/",
    "s3": "https://aws.amazon.com/s3/pricing/",
    "sqs": "https://aws.amazon.com/sqs/pricing/",
    "lambda": "https://aws.amazon.com/lambda/pricing/",
    "ec2": "https://aws.amazon.com/ec2/pricing/on-demand/",
    "ebs": "https://aws.amazon.com/ebs/pricing/",
    "sagemaker": "https://aws.amazon.com/sagemaker/pricing/",
}

# API Gateway HTTP API, per request (first 300 million a month).
HTTP_API_PER_REQUEST = 1.00 / 1e6
# DynamoDB on-demand (prices after the November 2024 reduction): per write / read request unit,
# per GB-month stored. Stream reads made by a Lambda event source mapping are free.
DYNAMODB_PER_WRU = 0.625 / 1e6
DYNAMODB_PER_RRU = 0.125 / 1e6
DYNAMODB_PER_GB_MONTH = 0.25
DYNAMODB_STREAM_READ_BY_LAMBDA = 0.0
# S3 Standard: PUT/COPY/POST/LIST per request, GET per request, per GB-month.
S3_PER_PUT = 0.005 / 1000
S3_PER_GET = 0.0004 / 1000
S3_PER_GB_MONTH = 0.023
# SQS standard queue, per request (each 64 KB chunk of a payload is one request).
SQS_PER_REQUEST = 0.40 / 1e6
# Lambda (x86): per invocation and per GB-second.
LAMBDA_PER_REQUEST = 0.20 / 1e6
LAMBDA_PER_GB_SECOND = 0.0000166667
# EC2 Linux on-demand, per hour; per-second billing with a 60-second minimum per start.
EC2_PER_HOUR = {
    "t3.micro": 0.0104,
    "t3.small": 0.0208,
    "t3.medium": 0.0416,
    "t3.large": 0.0832,
    "m5.large": 0.096,
    "c5.large": 0.085,
}
EC2_MEMORY_GIB = {"t3.micro": 1.0, "t3.small": 2.0, "t3.medium": 4.0, "t3.large": 8.0, "m5.large": 8.0,
                  "c5.large": 4.0}
EC2_MINIMUM_SECONDS = 60
# EBS gp3 per GB-month (the stopped instance's root volume is billed all month).
EBS_GP3_PER_GB_MONTH = 0.08
# A managed training job (SageMaker training, ml.m5.large), per hour, per-second billing with a
# 60-second minimum per job (assumed the same minimum as EC2's).
SAGEMAKER_TRAINING_PER_HOUR = {"ml.m5.large": 0.115}
SAGEMAKER_MINIMUM_SECONDS = 60
