"""`steward demo`: a demo street on its own SQLite file, served with the simulator on.

The file is made afresh on every run, seeded through the service's own entry points
(`steward.demo`), and served like `steward serve` with two differences: SIMULATOR is on (SMS
goes to the /sim page) and the scheduler is off (the page's clock panel runs the jobs, so
nothing happens behind a trainer's back). The simulator's clock opens at the demo's morning.
"""

from __future__ import annotations

import asyncio
import socket
import time
from pathlib import Path

import click
import httpx

from steward.cli.service import configure_logging
from steward.clock import system_clock
from steward.demo import STREET, Seeded, demo_start, seed
from steward.settings import Settings, SettingsError, load_settings
from steward.storage import db

DEMO_DB = Path("data") / "demo.sqlite3"


def demo_settings(path: Path, host: str, port: int) -> Settings:
    """The environment's settings, with the demo's database, the simulator on, no scheduler."""
    try:
        return load_settings(
            DATABASE_URL=f"sqlite://{path}",
            # The street is in Tianjin: its days, and numbers written the way its roster does.
            TIMEZONE="Asia/Shanghai",
            DEFAULT_REGION="CN",
            SIMULATOR=True,
            SCHEDULER=False,
            # Demo data: a power cut may lose its last commits; seeding is the faster for it.
            SQLITE_SYNCHRONOUS="NORMAL",
            PUBLIC_BASE_URL=f"http://{host}:{port}",
        )
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from None


def check_port(host: str, port: int) -> None:
    """Fail before seeding, with the way out, when something listens on the port already."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn's own socket
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise click.ClickException(
                f"cannot serve on {host}:{port} ({exc.strerror}): is a demo or the service "
                "running already? Stop it, or choose another port with --port"
            ) from None


def remove_database(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


async def seed_database(settings: Settings, path: Path) -> Seeded:
    """Make the demo's database afresh and seed it; the roster file is left beside it."""
    remove_database(path)
    await db.upgrade(settings.DATABASE_URL)
    await db.connect(settings.DATABASE_URL, synchronous="NORMAL")
    try:
        seeded = await seed(settings, demo_start(system_clock(), settings.tz))
    finally:
        await db.disconnect()
    path.with_name("demo-roster.csv").write_bytes(seeded.roster_csv.encode("utf-8-sig"))
    return seeded


async def serve(settings: Settings, seeded: Seeded, host: str, port: int) -> None:
    """Serve the demo; once the app is up, open the simulator's clock at the demo's morning."""
    import uvicorn

    from steward.app import create_app

    app = create_app(settings)
    config = uvicorn.Config(app, host=host, port=port, log_level=settings.LOG_LEVEL.lower())
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    while not server.started:  # uvicorn offers no event for "listening"; it says so in a flag
        if serving.done():
            return  # it could not start; its log said why
        await asyncio.sleep(0.05)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://demo") as http:
        opened = await http.post("/sim/api/clock", json={"at": seeded.start.isoformat()})
    if opened.status_code != 200:  # the machine's clock is past the morning already
        click.echo(f"simulator clock left as it is: {opened.json().get('error')}", err=True)
    url = f"http://{host}:{port}/sim"
    click.echo(f"\n  Alley Steward demo ({STREET}), simulator on: {url}\n  Ctrl+C stops.\n")
    await serving


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option(
    "--db",
    "path",
    default=DEMO_DB,
    show_default=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="the demo's SQLite file (deleted and made afresh)",
)
@click.option("--seed-only", is_flag=True, help="seed the demo street, then exit")
def demo(host: str, port: int, path: Path, seed_only: bool) -> None:
    """Seed a demo street with two weeks of history and serve it with the simulator."""
    settings = demo_settings(path, host, port)
    configure_logging(settings.LOG_LEVEL)
    if not seed_only:
        check_port(host, port)
    started = time.perf_counter()
    seeded = asyncio.run(seed_database(settings, path))
    took = time.perf_counter() - started
    local = seeded.start.astimezone(settings.tz)
    click.echo(
        f"demo street {STREET} seeded in {took:.1f} s: {seeded.roster.added} people, "
        f"{seeded.texts} texts and {seeded.jobs} job runs over two weeks; "
        f"the demo opens at {local:%Y-%m-%d %H:%M} ({path})"
    )
    if not seed_only:
        asyncio.run(serve(settings, seeded, host, port))
