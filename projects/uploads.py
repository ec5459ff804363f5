"""Refusing oversize dataset uploads while the request body is parsed, before anything is kept.

Django's ``DATA_UPLOAD_MAX_MEMORY_SIZE`` does not cover files, so the dataset upload views put
``DatasetUploadLimitHandler`` first in the request's upload handlers. A body whose declared length
is over the limit is not parsed at all; a file that grows past it while streaming stops being
written. Either way the view receives an ``OversizeUpload`` stand-in carrying the size, which
``dataset_create`` rejects with its usual "too large" message — one code path for every size check.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from functools import wraps

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.core.files.uploadhandler import FileUploadHandler
from django.http import HttpRequest, HttpResponse, QueryDict
from django.utils.datastructures import MultiValueDict
from django.views.decorators.csrf import csrf_exempt, csrf_protect

# Room for the multipart envelope and the form's other fields around the file itself.
MULTIPART_OVERHEAD_BYTES = 64 * 1024
UPLOAD_FIELD = "file"


class OversizeUpload(UploadedFile):
    """An upload that was too large to keep: a name and a size, no content."""

    def __init__(self, *, name: str, size: int) -> None:
        super().__init__(file=io.BytesIO(b""), name=name, content_type="application/octet-stream", size=size)


class DatasetUploadLimitHandler(FileUploadHandler):
    def __init__(self, request: HttpRequest | None = None) -> None:
        super().__init__(request)
        self.max_bytes: int = settings.DATASET_MAX_BYTES
        self.oversize = False

    def handle_raw_input(self, input_data, META, content_length, boundary, encoding=None):  # noqa: N803 - Django's signature
        if content_length > self.max_bytes + MULTIPART_OVERHEAD_BYTES:
            # Refuse without reading the body: answer as if the form held only the (too large) file.
            files = MultiValueDict({UPLOAD_FIELD: [OversizeUpload(name="upload", size=content_length)]})
            return QueryDict(encoding=encoding), files
        return None

    def new_file(self, *args, **kwargs) -> None:
        super().new_file(*args, **kwargs)
        self.oversize = False

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes | None:
        if start + len(raw_data) > self.max_bytes:
            self.oversize = True
        # Returning None keeps the rest of the file away from the handlers that write it to disk.
        return None if self.oversize else raw_data

    def file_complete(self, file_size: int) -> UploadedFile | None:
        if self.oversize:
            return OversizeUpload(name=self.file_name or "upload", size=file_size)
        return None


def install_dataset_upload_limit(request: HttpRequest) -> None:
    """Put the limit handler first; call before anything reads ``request.POST``/``FILES``."""
    request.upload_handlers.insert(0, DatasetUploadLimitHandler(request))


def dataset_upload_limited(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Decorate an HTML upload view with the size limit.

    The CSRF middleware reads ``request.POST``, which parses the body, so the handlers must change
    before it runs: the outer view is CSRF-exempt and the inner one CSRF-protected (Django's
    documented recipe for changing upload handlers per view).
    """
    protected = csrf_protect(view)

    @wraps(view)
    @csrf_exempt
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        install_dataset_upload_limit(request)
        return protected(request, *args, **kwargs)

    return wrapper
