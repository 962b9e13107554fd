"""S3's error answers: ``<Error><Code/><Message/><Resource/><RequestId/></Error>`` with the
status S3 gives each code, so a real client (boto3, the AWS CLI) raises the exception
its user expects (``ClientError`` with ``Error.Code == "NoSuchKey"``, ...)."""

from __future__ import annotations

import re
from xml.etree.ElementTree import Element, SubElement, tostring

from starlette.responses import Response

XML_TYPE = "application/xml"

STATUS = {
    "AccessDenied": 403,
    "InvalidAccessKeyId": 403,
    "SignatureDoesNotMatch": 403,
    "RequestTimeTooSkewed": 403,
    "AuthorizationHeaderMalformed": 400,
    "AuthorizationQueryParametersError": 400,
    "InvalidArgument": 400,
    "InvalidRequest": 400,
    "InvalidBucketName": 400,
    "InvalidDigest": 400,
    "BadDigest": 400,
    "XAmzContentSHA256Mismatch": 400,
    "IncompleteBody": 400,
    "EntityTooLarge": 400,
    "EntityTooSmall": 400,
    "MalformedXML": 400,
    "InvalidPart": 400,
    "InvalidPartOrder": 400,
    "MissingContentLength": 411,
    "NoSuchKey": 404,
    "NoSuchBucket": 404,
    "NoSuchUpload": 404,
    "MethodNotAllowed": 405,
    "SlowDown": 503,
    "ServiceUnavailable": 503,
    "InternalError": 500,
    "NotImplemented": 501,
}


_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def xml_safe(text: str) -> str:
    """``text`` without the characters XML 1.0 cannot carry (a key with NUL must still
    get a parseable error, or the client reports a bare 400)."""
    return _NOT_XML.sub("\ufffd", text)


class S3Error(Exception):
    """One S3 error: its code (which fixes the status) and a one-line message."""

    def __init__(self, code: str, message: str, *, resource: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message.splitlines()[0] if message else code
        self.resource = resource
        self.status = STATUS.get(code, 400)


def error_response(error: S3Error, request_id: str, resource: str, *, head: bool) -> Response:
    """The XML answer (no body to a HEAD request, as S3 does)."""
    root = Element("Error")
    SubElement(root, "Code").text = error.code
    SubElement(root, "Message").text = xml_safe(error.message)
    SubElement(root, "Resource").text = xml_safe(error.resource or resource)
    SubElement(root, "RequestId").text = xml_safe(request_id)
    body = b"" if head else tostring(root, encoding="utf-8", xml_declaration=True)
    headers = {"x-amz-request-id": request_id}
    if head:
        headers["x-amz-error-code"] = error.code
    return Response(body, error.status, headers=headers, media_type=XML_TYPE)
