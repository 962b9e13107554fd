"""The S3-compatible upload endpoint under ``/api/cloud/storage`` (OPS §15): SigV4
(:mod:`.sigv4`, :mod:`.chunked`), job credentials (:mod:`.auth`), objects on disk
(:mod:`.files`, :mod:`.body`), operations (:mod:`.objects`, :mod:`.multipart`), S3 XML
(:mod:`.xml`, :mod:`.errors`), routing (:mod:`.routes`)."""
