"""The guide's `migrateS3ToDynamoDB.js`, as plain sequential Python: the baseline.

Loads registrations.json whole, then for each record: GetItem (duplicate
check), one PutObject per image, PutItem. No concurrency, no streaming; the way
the guide's Node.js script works, for the benchmark to compare against.

    python bench/guide_loop.py BUCKET TABLE
"""

from __future__ import annotations

import base64
import json
import re
import sys
from datetime import UTC, datetime
from decimal import Decimal

import boto3

FIELDS = {"image": "userPhoto", "aadhaarCopy": "aadhaar"}
DATA_URL = re.compile(r"^data:([^;,]+);base64,(.*)$", re.S)


def main(bucket: str, table: str) -> None:
    s3 = boto3.client("s3")
    ddb = boto3.resource("dynamodb").Table(table)
    body = s3.get_object(Bucket=bucket, Key="registrations.json")["Body"].read()
    registrations = json.loads(body, parse_float=Decimal)
    now = datetime.now(UTC).isoformat()
    migrated = 0
    for record in registrations:
        if "Item" in ddb.get_item(Key={"id": record["id"]}):
            continue
        results = {}
        for field in list(record):
            value = record[field]
            match = DATA_URL.match(value) if isinstance(value, str) else None
            if not match:
                continue
            mime, payload = match.groups()
            name = FIELDS.get(field, field)
            key = f"registration-images/{record['id']}/{name}.{mime.split('/')[1]}"
            s3.put_object(Bucket=bucket, Key=key, Body=base64.b64decode(payload), ContentType=mime)
            results[name] = {"s3Key": key, "mimeType": mime}
            del record[field]
        ddb.put_item(
            Item={
                **record,
                "imageUploadResults": results,
                "migratedFrom": "S3",
                "migrationDate": now,
            }
        )
        migrated += 1
    print(json.dumps({"migrated": migrated}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
