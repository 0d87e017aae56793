"""Google's Files API in the fake Gemini: resumable uploads, files.get and files.delete, files owned by
the project of the key that uploaded them, expiry after 48 h, and `fileData` parts of generateContent
resolved to the bytes they reference.

The upload protocol, as Google's clients speak it: `POST /upload/v1beta/files` with
`X-Goog-Upload-Protocol: resumable`, `X-Goog-Upload-Command: start`, the size and type of what follows
(`X-Goog-Upload-Header-Content-Length` / `-Content-Type`) and a JSON body `{"file": {"display_name"}}`
answers 200 with the session's address in `X-Goog-Upload-URL` (`X-Goog-Upload-Status: active`). Bytes go
to that address with `X-Goog-Upload-Command: upload` (or `upload, finalize`) at `X-Goog-Upload-Offset`,
which must be the count received so far; `finalize` answers `{"file": File}` with
`X-Goog-Upload-Status: final`, once the bytes add up to the announced length.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import string
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from aiohttp import web

from tests.fakes.imagegen import sniff_mime
from tests.fakes.providers.base import request_key
from tests.fakes.providers.gemini_request import INPUT_MIME_TYPES, GeminiError, invalid

#: How long Google keeps a file, and the most one file may hold.
FILE_TTL = 48 * 3600.0
MAX_FILE_BYTES = 2 * 1024**3
GOOGLE_FILES = "https://generativelanguage.googleapis.com/v1beta/files/"
NO_ACCESS = "You do not have permission to access the File {id} or it may not exist."
NOT_ACTIVE = "The File {id} is not in an ACTIVE state and usage is not allowed."
UPLOAD_COMMANDS = frozenset({"start", "upload", "finalize", "query", "cancel"})
#: A resolver turns a fileData part (canonical) at a path into the image bytes it references.
Resolver = Callable[[dict[str, Any], str], bytes]


class _Owner(Protocol):
    """What the Files API needs of the fake Gemini it is part of."""

    @property
    def base_url(self) -> str:
        """The fake's root URL."""
        ...

    def _check_key(self, request: web.Request) -> GeminiError | None:
        """The key error of a request, if any."""
        ...


@dataclass
class StoredFile:
    """One uploaded file."""

    id: str
    project: str
    display_name: str
    mime: str
    data: bytes
    created: float
    expires: float
    #: files.get answers PROCESSING this many more times before ACTIVE.
    processing: int = 0


@dataclass
class Upload:
    """A finished upload as the fake received it (tests assert these)."""

    key: str | None
    project: str
    name: str
    mime: str
    data: bytes


@dataclass
class _Session:
    """An open resumable upload session."""

    key: str | None
    project: str
    length: int | None
    mime: str
    display_name: str
    received: bytearray = field(default_factory=bytearray)


def _rfc3339(moment: float) -> str:
    """Epoch seconds as Google writes timestamps (microseconds, Z)."""
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _file_id() -> str:
    """An id like Google's: 12 lower-case letters and digits."""
    return "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(12))


class FakeGeminiFiles:
    """The Files API of one fake Gemini; each key is its own project unless `share_project` says so."""

    def __init__(self, owner: _Owner) -> None:
        self._owner = owner
        self.files: dict[str, StoredFile] = {}
        #: Every finished upload, in order.
        self.uploads: list[Upload] = []
        self._sessions: dict[str, _Session] = {}
        self._projects: dict[str, str] = {}
        self._offset = 0.0
        #: Lifetime of new files (tests shorten it).
        self.ttl = FILE_TTL
        #: New files read as PROCESSING for this many files.get calls.
        self.processing_polls = 0

    # -- test hooks ---------------------------------------------------------------------------

    def now(self) -> float:
        """The fake's clock (real time, shifted by `shift_clock`)."""
        return time.time() + self._offset

    def shift_clock(self, seconds: float) -> None:
        """Let time pass on the server: files whose expiry passes are gone."""
        self._offset += seconds

    def expire(self, name: str) -> None:
        """Make one file (files/abc, abc or its URI) expire now."""
        self.files[name.rsplit("/", 1)[-1]].expires = self.now() - 1

    def share_project(self, *keys: str) -> None:
        """Put keys in one project: each reads the others' files."""
        for key in keys:
            self._projects[key] = keys[0]

    def project_of(self, key: str | None) -> str:
        """The project a key belongs to."""
        return self._projects.get(key or "", key or "default")

    # -- routes -------------------------------------------------------------------------------

    def add_routes(self, app: web.Application) -> None:
        """media.upload (both steps), files.get and files.delete."""
        app.router.add_post("/upload/v1beta/files", self._upload)
        app.router.add_get("/v1beta/files/{id}", self._get)
        app.router.add_delete("/v1beta/files/{id}", self._delete)

    async def _upload(self, request: web.Request) -> web.Response:
        """Start a session, or take bytes for one (upload_id in the query)."""
        try:
            if "upload_id" in request.query:
                return await self._take_bytes(request, request.query["upload_id"])
            return await self._start(request)
        except GeminiError as error:
            return error.response()

    async def _start(self, request: web.Request) -> web.Response:
        """`start`: check the key and the announced upload, open a session."""
        if (denied := self._owner._check_key(request)) is not None:
            raise denied
        if request.headers.get("X-Goog-Upload-Protocol", "").lower() != "resumable":
            raise invalid("Only the resumable upload protocol is supported here.")
        if _commands(request) != {"start"}:
            raise invalid("Invalid X-Goog-Upload-Command for a new upload: expected start.")
        length = _announced_length(request)
        mime = request.headers.get("X-Goog-Upload-Header-Content-Type", "")
        display = await _display_name(request)
        key = request_key(request)
        session_id = secrets.token_urlsafe(24)
        self._sessions[session_id] = _Session(key, self.project_of(key), length, mime, display)
        url = f"{self._owner.base_url}/upload/v1beta/files?upload_id={session_id}&upload_protocol=resumable"
        headers = {
            "X-Goog-Upload-Status": "active",
            "X-Goog-Upload-URL": url,
            "X-Goog-Upload-Control-URL": url,
            "X-Goog-Upload-Chunk-Granularity": str(8 * 1024 * 1024),
        }
        return web.Response(status=200, headers=headers)

    async def _take_bytes(self, request: web.Request, session_id: str) -> web.Response:
        """`upload` at the right offset, `finalize` once everything announced has arrived, `query`."""
        session = self._sessions.get(session_id)
        if session is None:
            raise GeminiError(404, "NOT_FOUND", "No upload session with this id.")
        commands = _commands(request)
        if not commands or not commands <= UPLOAD_COMMANDS - {"start"}:
            raise invalid("Invalid X-Goog-Upload-Command.")
        if "cancel" in commands:
            del self._sessions[session_id]
            return web.Response(status=200, headers={"X-Goog-Upload-Status": "cancelled"})
        if "upload" in commands:
            await self._append(request, session)
        if "finalize" not in commands:
            received = str(len(session.received))
            headers = {"X-Goog-Upload-Status": "active", "X-Goog-Upload-Size-Received": received}
            return web.Response(status=200, headers=headers)
        if session.length is not None and len(session.received) != session.length:
            raise invalid(
                f"Upload finalized with {len(session.received)} bytes; {session.length} were announced."
            )
        del self._sessions[session_id]
        stored = self._store(session)
        return web.json_response({"file": self._resource(stored)}, headers={"X-Goog-Upload-Status": "final"})

    async def _append(self, request: web.Request, session: _Session) -> None:
        """Bytes at X-Goog-Upload-Offset, which must be where the session is."""
        offset = request.headers.get("X-Goog-Upload-Offset", "")
        if not offset.isdigit() or int(offset) != len(session.received):
            raise invalid(
                f"Invalid X-Goog-Upload-Offset {offset!r}: {len(session.received)} bytes were received."
            )
        data = await request.read()
        if str(len(data)) != request.headers.get("Content-Length", str(len(data))):
            raise invalid("Content-Length does not match the bytes sent.")
        if session.length is not None and len(session.received) + len(data) > session.length:
            raise invalid(f"Upload exceeds the announced {session.length} bytes.")
        session.received += data

    def _store(self, session: _Session) -> StoredFile:
        """Keep a finalized upload as a file of the session's project."""
        data = bytes(session.received)
        now = self.now()
        mime = session.mime or sniff_mime(data) or "application/octet-stream"
        stored = StoredFile(
            _file_id(), session.project, session.display_name, mime, data, now, now + self.ttl
        )
        stored.processing = self.processing_polls
        self.files[stored.id] = stored
        self.uploads.append(Upload(session.key, session.project, f"files/{stored.id}", mime, data))
        return stored

    def _resource(self, stored: StoredFile) -> dict[str, Any]:
        """A File as the API serialises it (sizeBytes as a string: int64 in proto3 JSON)."""
        digest = hashlib.sha256(stored.data).hexdigest().encode()
        resource = {
            "name": f"files/{stored.id}",
            "mimeType": stored.mime,
            "sizeBytes": str(len(stored.data)),
            "createTime": _rfc3339(stored.created),
            "updateTime": _rfc3339(stored.created),
            "expirationTime": _rfc3339(stored.expires),
            "sha256Hash": base64.b64encode(digest).decode(),
            "uri": f"{self._owner.base_url}/v1beta/files/{stored.id}",
            "state": "PROCESSING" if stored.processing > 0 else "ACTIVE",
            "source": "UPLOADED",
        }
        if stored.display_name:
            resource["displayName"] = stored.display_name
        return resource

    def _lookup(self, request: web.Request, file_id: str) -> StoredFile:
        """The file, when it exists, has not expired and belongs to the caller's project; else 403."""
        if (denied := self._owner._check_key(request)) is not None:
            raise denied
        return self._owned(request_key(request), file_id)

    def _owned(self, key: str | None, file_id: str) -> StoredFile:
        """A live file of this key's project, or Google's 403 (which never says which it was)."""
        stored = self.files.get(file_id)
        if stored is None or stored.project != self.project_of(key) or stored.expires <= self.now():
            raise GeminiError(403, "PERMISSION_DENIED", NO_ACCESS.format(id=file_id))
        return stored

    async def _get(self, request: web.Request) -> web.Response:
        """files.get: the File (PROCESSING while the test says so)."""
        try:
            stored = self._lookup(request, request.match_info["id"])
        except GeminiError as error:
            return error.response()
        resource = self._resource(stored)
        stored.processing = max(0, stored.processing - 1)
        return web.json_response(resource)

    async def _delete(self, request: web.Request) -> web.Response:
        """files.delete: gone for everyone; answers {}."""
        try:
            stored = self._lookup(request, request.match_info["id"])
        except GeminiError as error:
            return error.response()
        del self.files[stored.id]
        return web.json_response({})

    # -- generateContent ----------------------------------------------------------------------

    def resolver(self, key: str | None) -> Resolver:
        """What generateContent uses to read a fileData part sent with this key."""

        def resolve(file_data: dict[str, Any], path: str) -> bytes:
            uri = file_data.get("fileUri")
            if not isinstance(uri, str) or not uri:
                raise invalid(f"* GenerateContentRequest.{path}.file_uri: file_uri is required.\n")
            stored = self._owned(key, self._file_id_of(uri, path))
            if stored.processing > 0:
                raise GeminiError(400, "FAILED_PRECONDITION", NOT_ACTIVE.format(id=stored.id))
            if sniff_mime(stored.data) not in INPUT_MIME_TYPES:
                raise invalid(f"Unsupported MIME type: {stored.mime}")
            return stored.data

        return resolve

    def _file_id_of(self, uri: str, path: str) -> str:
        """The id in a file URI of this API (the fake's own address or Google's), else 400."""
        for prefix in (f"{self._owner.base_url}/v1beta/files/", GOOGLE_FILES):
            if uri.startswith(prefix) and (file_id := uri[len(prefix) :]) and "/" not in file_id:
                return file_id
        raise invalid(f"* GenerateContentRequest.{path}.file_uri: Invalid file uri: {uri[:80]}\n")


def _commands(request: web.Request) -> set[str]:
    """The comma-separated X-Goog-Upload-Command words."""
    header = request.headers.get("X-Goog-Upload-Command", "")
    return {word.strip().lower() for word in header.split(",") if word.strip()}


def _announced_length(request: web.Request) -> int | None:
    """X-Goog-Upload-Header-Content-Length: a size within the 2 GB cap, or absent."""
    value = request.headers.get("X-Goog-Upload-Header-Content-Length")
    if value is None:
        return None
    if not value.isdigit():
        raise invalid(f"Invalid X-Goog-Upload-Header-Content-Length: {value[:40]}")
    if int(value) > MAX_FILE_BYTES:
        raise invalid(f"File size {value} exceeds the maximum of {MAX_FILE_BYTES} bytes.")
    return int(value)


async def _display_name(request: web.Request) -> str:
    """The display name in a `start` body (camelCase or snake_case; other File fields ignored)."""
    if not await request.read():
        return ""
    try:
        body = await request.json()
    except ValueError:
        raise invalid("Invalid JSON payload received.") from None
    if not isinstance(body, dict):
        raise invalid("Invalid JSON payload received.")
    unknown = set(body) - {"file"}
    if unknown:
        raise invalid(
            f'Invalid JSON payload received. Unknown name "{sorted(unknown)[0]}": Cannot find field.'
        )
    file = body.get("file") or {}
    name = file.get("displayName", file.get("display_name", "")) if isinstance(file, dict) else ""
    return name if isinstance(name, str) else ""
