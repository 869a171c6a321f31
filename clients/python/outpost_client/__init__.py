"""Outpost's client for schedulers written in Python.

Submits job commands to Outpost workers over Kafka, cancels runs, waits for a run's end and
watches run events, the way `outpost submit`, `outpost cancel` and `outpost submit --wait` do:

    from outpost_client import Client

    client = Client("broker:9092")
    run_id = client.submit("datahub-ingest", recipe=open("recipe.yml", "rb").read())
    end = client.wait(run_id, timeout=3600)
    if end.state != end.SUCCEEDED: ...

Commands are signed for workers that require it with `Client(..., signer=Signer(...))`, Signer
from outpost_client.signing (Debian's python3-jwt and python3-cryptography).

Needs Debian's python3-confluent-kafka and python3-protobuf, and the wire contract's modules
generated from proto/ (`clients/python/generate` writes them beside this package).
"""

from .client import (
    Client,
    EXIT_STATUS,
    ExitStatus,
    WaitTimeout,
    exit_status_of,
    state_name,
    uuid7,
)

# Signing needs PyJWT and cryptography: only imported when asked for (outpost_client.signing).

__all__ = ["Client", "EXIT_STATUS", "ExitStatus", "WaitTimeout", "exit_status_of", "state_name",
           "uuid7"]
