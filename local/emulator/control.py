"""A thin HTTP client of the emulator's ``/_emulator/*`` control endpoints (stdlib only, no boto3)."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Mapping
from typing import Any


class EmulatorControlError(RuntimeError):
    """A control endpoint answered with an error (``status`` and the server's ``message``)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status
        self.message = message


class EmulatorControl:
    """Drive a running EmulatorServer: knobs, seeded objects, jobs, reset."""

    def __init__(self, url: str, timeout: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        # Never route loopback calls through an HTTP proxy from the environment.
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def _call(self, method: str, name: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode("utf-8")
        request = urllib.request.Request(
            f"{self.url}/_emulator/{name}",
            data=data,
            method=method,
            headers={"Content-Type": "application/json"},
        )
        try:
            with self._opener.open(request, timeout=self.timeout) as response:
                return json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            try:
                message = json.loads(raw).get("Message", raw.decode("utf-8", "replace"))
            except ValueError:
                message = raw.decode("utf-8", "replace")
            raise EmulatorControlError(exc.code, message) from None

    def config(self) -> dict[str, Any]:
        """Return the current EmulatorConfig as a dict."""
        result: dict[str, Any] = self._call("GET", "config")
        return result

    def configure(self, **changes: Any) -> dict[str, Any]:
        """Change some knobs (``now_ms=`` sets the clock offset); return the whole new config."""
        result: dict[str, Any] = self._call("POST", "config", changes)
        return result

    def seed(self, domain: str, object_type: str, objects: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
        """Upsert Customer Profiles objects (each with ``id`` and ``lastUpdated`` epoch ms) by id."""
        body = {"domainName": domain, "objectType": object_type, "objects": [dict(o) for o in objects]}
        result: dict[str, Any] = self._call("POST", "objects", body)
        return result

    def delete(self, domain: str, object_type: str, ids: Iterable[str]) -> dict[str, Any]:
        """Delete objects by id (DeleteProfileObject; for ``_profile`` DeleteProfile, with its objects).

        Returns ``{"domainName", "deleted": {object type: [ids]}, "changed": {}}``.
        """
        body = {"domainName": domain, "objectType": object_type, "ids": list(ids)}
        result: dict[str, Any] = self._call("POST", "delete", body)
        return result

    def merge(
        self, domain: str, main_profile_id: str, profile_ids_to_merge: Iterable[str], at_ms: int | None = None
    ) -> dict[str, Any]:
        """Merge profiles into ``main_profile_id`` (MergeProfiles) at ``at_ms`` (default: the emulator's now).

        Returns ``{"domainName", "mainProfileId", "atMs", "deleted": {type: [ids]}, "changed": {type: [ids]}}``.
        """
        body: dict[str, Any] = {
            "domainName": domain,
            "mainProfileId": main_profile_id,
            "profileIdsToBeMerged": list(profile_ids_to_merge),
        }
        if at_ms is not None:
            body["atMs"] = at_ms
        result: dict[str, Any] = self._call("POST", "merge", body)
        return result

    def objects(self, domain: str, object_type: str) -> list[dict[str, Any]]:
        """The live objects of a domain and type, sorted by id: each ``{"id", "lastUpdated", "object"}``."""
        query = urllib.parse.urlencode({"domainName": domain, "objectType": object_type})
        objects: list[dict[str, Any]] = self._call("GET", f"objects?{query}")["objects"]
        return objects

    def jobs(self) -> list[dict[str, Any]]:
        """Return every export job since the last reset, oldest first."""
        jobs: list[dict[str, Any]] = self._call("GET", "jobs")["jobs"]
        return jobs

    def finish_job(self, job_id: str, status: str = "COMPLETED", status_message: str | None = None) -> dict[str, Any]:
        """End an IN_PROGRESS job now (a never-ending one, typically); return its snapshot."""
        body: dict[str, Any] = {"jobId": job_id, "status": status}
        if status_message is not None:
            body["statusMessage"] = status_message
        result: dict[str, Any] = self._call("POST", "jobs/finish", body)
        return result

    def faults(self) -> list[dict[str, Any]]:
        """Every armed fault rule: ``{"rule", "fired", "remaining"}``."""
        rules: list[dict[str, Any]] = self._call("GET", "faults")["rules"]
        return rules

    def reset(self) -> None:
        """Forget all state and restore the emulator's initial config."""
        self._call("POST", "reset", {})

    def health(self) -> dict[str, Any]:
        """Return ``{"status": "ok", "nowMs", "region", "account"}``."""
        result: dict[str, Any] = self._call("GET", "health")
        return result

    def wait_idle(self, timeout: float = 30.0, poll_seconds: float = 0.02) -> list[dict[str, Any]]:
        """Block until no job is IN_PROGRESS; return the jobs. Raises TimeoutError after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            jobs = self.jobs()
            running = [j["id"] for j in jobs if j["status"] == "IN_PROGRESS"]
            if not running:
                return jobs
            if time.monotonic() >= deadline:
                raise TimeoutError(f"{len(running)} export job(s) still IN_PROGRESS after {timeout}s: {running}")
            time.sleep(poll_seconds)
