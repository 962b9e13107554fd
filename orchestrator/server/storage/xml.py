"""The S3 XML documents the endpoint writes (listings, multipart answers) and the one it
reads (CompleteMultipartUpload's part list), in the 2006-03-01 namespace clients expect."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any
from urllib.parse import quote
from xml.etree.ElementTree import Element, ParseError, SubElement, fromstring, tostring

from starlette.responses import Response

from orchestrator.server.storage.errors import XML_TYPE, S3Error

NS = "http://s3.amazonaws.com/doc/2006-03-01/"
MAX_COMPLETE_BYTES = 4 * 1024 * 1024  # 10,000 parts of XML fit with room to spare


def timestamp(value: Any) -> str:
    """ISO 8601 with milliseconds and Z, as S3 writes LastModified."""
    when = datetime.fromisoformat(str(value)) if not isinstance(value, datetime) else value
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def respond(root: Element, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    """One XML document as the answer."""
    root.set("xmlns", NS)
    body = tostring(root, encoding="utf-8", xml_declaration=True)
    return Response(body, status, headers=dict(headers or {}), media_type=XML_TYPE)


def _add(parent: Element, name: str, text: Any) -> Element:
    child = SubElement(parent, name)
    child.text = str(text)
    return child


def list_buckets(buckets: Iterable[Mapping[str, Any]]) -> Element:
    """``ListAllMyBucketsResult``."""
    root = Element("ListAllMyBucketsResult")
    owner = SubElement(root, "Owner")
    _add(owner, "ID", "orchestrator-hub")
    _add(owner, "DisplayName", "orchestrator-hub")
    parent = SubElement(root, "Buckets")
    for bucket in buckets:
        entry = SubElement(parent, "Bucket")
        _add(entry, "Name", bucket["bucket"])
        _add(entry, "CreationDate", timestamp(bucket["created_at"]))
    return root


def list_objects(
    bucket: str,
    params: Mapping[str, str],
    page: Mapping[str, Any],
    *,
    max_keys: int,
    next_token: str | None,
) -> Element:
    """``ListBucketResult`` of ListObjectsV2 (keys URL-encoded when asked, as boto3 asks)."""
    encode = params.get("encoding-type") == "url"

    def name(value: str) -> str:
        return quote(value, safe="/") if encode else value

    root = Element("ListBucketResult")
    _add(root, "Name", bucket)
    _add(root, "Prefix", name(params.get("prefix", "")))
    if params.get("delimiter"):
        _add(root, "Delimiter", name(params["delimiter"]))
    if params.get("start-after"):
        _add(root, "StartAfter", name(params["start-after"]))
    if encode:
        _add(root, "EncodingType", "url")
    _add(root, "MaxKeys", max_keys)
    _add(root, "KeyCount", len(page["entries"]))
    _add(root, "IsTruncated", "true" if page["truncated"] else "false")
    if params.get("continuation-token"):
        _add(root, "ContinuationToken", params["continuation-token"])
    if next_token:
        _add(root, "NextContinuationToken", next_token)
    for entry in page["entries"]:
        if entry["is_prefix"]:
            _add(SubElement(root, "CommonPrefixes"), "Prefix", name(entry["name"]))
            continue
        item = SubElement(root, "Contents")
        _add(item, "Key", name(entry["name"]))
        _add(item, "LastModified", timestamp(entry["uploaded_at"]))
        _add(item, "ETag", f'"{entry["etag"]}"')
        _add(item, "Size", entry["size_bytes"])
        _add(item, "StorageClass", "STANDARD")
    return root


def initiated(bucket: str, key: str, upload_id: str) -> Element:
    """``InitiateMultipartUploadResult``."""
    root = Element("InitiateMultipartUploadResult")
    _add(root, "Bucket", bucket)
    _add(root, "Key", key)
    _add(root, "UploadId", upload_id)
    return root


def completed(location: str, bucket: str, key: str, etag: str) -> Element:
    """``CompleteMultipartUploadResult``."""
    root = Element("CompleteMultipartUploadResult")
    _add(root, "Location", location)
    _add(root, "Bucket", bucket)
    _add(root, "Key", key)
    _add(root, "ETag", f'"{etag}"')
    return root


def parse_part_list(body: bytes) -> list[tuple[int, str]]:
    """``[(part number, etag without quotes)]`` of a CompleteMultipartUpload body."""
    try:
        root = fromstring(body)  # noqa: S314 (expat >= 2.4 limits entity expansion; size capped)
    except ParseError:
        raise S3Error(
            "MalformedXML", "the CompleteMultipartUpload body is not well-formed XML"
        ) from None
    parts: list[tuple[int, str]] = []
    for element in root.iter():
        if element.tag.rsplit("}", 1)[-1] != "Part":
            continue
        number = etag = None
        for child in element:
            tag = child.tag.rsplit("}", 1)[-1]
            if tag == "PartNumber":
                number = (child.text or "").strip()
            elif tag == "ETag":
                etag = (child.text or "").strip().strip('"')
        if number is None or not number.isdigit() or etag is None:
            raise S3Error("MalformedXML", "each Part needs a PartNumber and an ETag")
        parts.append((int(number), etag))
    if not parts:
        raise S3Error("MalformedXML", "the CompleteMultipartUpload body lists no Part")
    return parts
