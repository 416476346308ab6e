"""`crowdloop deploy`: the scheduled round as a Prefect deployment, and the process that runs it.

The deployment (named after the campaign: params.yaml ``name``, else its directory) is
registered on the Prefect server that ``PREFECT_API_URL`` names, with the schedule of
``params.yaml`` (``schedule.cron`` or ``schedule.interval_minutes``); this process then
polls the server and runs each scheduled flow run (one at a time) until it is stopped
(Ctrl-C, or SIGTERM: exit status 143), when the schedule is paused so runs do not pile up
while nothing can execute them. With a work pool the
deployment is registered there instead, and the pool's workers run the rounds until
``crowdloop deploy --pause`` (``--resume`` starts the schedule again). Either way the
deployment's concurrency limit is 1: a run that comes due while a round is going is
cancelled by the server, instead of a worker starting a process that waits for the lock.
"""

from __future__ import annotations

from datetime import timedelta

from crowdloop.tasks.config import ScheduleConfig
from crowdloop.tasks.errors import CampaignError, ConfigError
from crowdloop.tasks.store import Campaign


def schedule_options(schedule: ScheduleConfig, source: str) -> dict:
    """``to_deployment`` keywords for the schedule: ``cron`` wins over ``interval_minutes``."""
    if schedule.cron:
        from prefect.client.schemas.schedules import CronSchedule

        try:
            CronSchedule(cron=schedule.cron)
        except ValueError as err:  # pydantic's ValidationError: several lines; its first error's message is one
            detail = err.errors()[0]["msg"].removeprefix("Value error, ") if hasattr(err, "errors") else err
            raise ConfigError(f"{source}: 'schedule.cron' {schedule.cron!r} is not a cron line ({detail}).") from None
        return {"cron": schedule.cron}
    if schedule.interval_minutes:
        return {"interval": timedelta(minutes=schedule.interval_minutes)}
    raise ConfigError(f"{source}: set 'schedule.interval_minutes' or 'schedule.cron' to deploy.")


def describe(schedule: dict) -> str:
    """:func:`schedule_options`'s result in words: ``cron '0 9 * * 1-5'``, ``every 60 minutes``, ``every 6 s``."""
    if "cron" in schedule:
        return f"cron {schedule['cron']!r}"
    seconds = schedule["interval"].total_seconds()
    if seconds == 60:
        return "every minute"
    return f"every {seconds / 60:g} minutes" if seconds >= 60 else f"every {seconds:g} s"


def api_url() -> str:
    """The Prefect server to deploy on; a clear error when none is set or it does not answer."""
    import httpx
    from prefect.settings import get_current_settings

    url = get_current_settings().api.url
    if not url:
        raise CampaignError("PREFECT_API_URL is not set: start a server (`prefect server start --host "
                            "127.0.0.1 --port 4200`) and export PREFECT_API_URL=http://127.0.0.1:4200/api.")
    try:
        httpx.get(f"{url.rstrip('/')}/health", timeout=10).raise_for_status()
    except httpx.HTTPError as err:
        raise CampaignError(f"the Prefect server at PREFECT_API_URL={url} does not answer ({err}); "
                            "is `prefect server start` running?") from None
    return url


def serve(campaign: Campaign, name: str, schedule: dict) -> None:
    """Register the deployment and run its scheduled flow runs, one at a time, until Ctrl-C (returns) or
    SIGTERM (raises signals.Terminated, so the command exits with 143); either way the schedule is paused.

    Prefect's ``serve`` answers SIGTERM with its runner's handler, which exits with status 0 from the
    middle of the event loop (asyncio tracebacks, a coroutine never awaited). Here SIGTERM cancels the
    serving as Ctrl-C does (asyncio's own way): the runner unwinds, pausing the schedule, and then the
    command ends as every crowdloop command ends on SIGTERM."""
    import asyncio

    from prefect.runner import Runner

    from crowdloop import signals

    runner = Runner(pause_on_shutdown=True, limit=1)
    runner.add_deployment(_deployment(campaign, name, schedule))
    terminated = []

    async def run() -> None:
        loop, task = asyncio.get_running_loop(), asyncio.current_task()

        def on_sigterm(*_) -> None:
            terminated.append(True)
            loop.call_soon_threadsafe(task.cancel)

        runner.handle_sigterm = on_sigterm  # Runner.start installs it as the SIGTERM handler
        await runner.start()

    try:
        asyncio.run(run())
    except asyncio.CancelledError:
        if not terminated:
            raise
    except KeyboardInterrupt:
        return  # Ctrl-C: the runner paused the schedule on its way out
    if terminated:
        raise signals.Terminated()


def register(campaign: Campaign, name: str, schedule: dict, work_pool: str) -> str:
    """Register the deployment on the Prefect work pool ``work_pool``, whose workers (``prefect worker
    start --pool ...``, crowdloop installed, the campaign at the same path) run its rounds; returns its id."""
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    try:
        with get_client(sync_client=True) as client:
            client.read_work_pool(work_pool)
    except ObjectNotFound:
        raise CampaignError(f"the Prefect server has no work pool {work_pool!r}; create it with `prefect "
                            f"work-pool create {work_pool} --type process`.") from None
    return str(_deployment(campaign, name, schedule, work_pool_name=work_pool).apply())


def set_paused(name: str, url: str, *, paused: bool) -> str:
    """Pause (or resume) the schedule of the campaign's deployment ``name``; returns its id. A pause
    deletes the runs already scheduled, so none starts late once it resumes (Prefect's pause)."""
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    from crowdloop.flows.scheduled import scheduled_round

    full = f"{scheduled_round.name}/{name}"
    try:
        with get_client(sync_client=True) as client:
            deployment_id = client.read_deployment_by_name(full).id
            (client.pause_deployment if paused else client.resume_deployment)(deployment_id)
    except ObjectNotFound:
        raise CampaignError(f"the Prefect server at {url} has no deployment {full}: register it first "
                            "(`crowdloop deploy --work-pool POOL`, or serve it with `crowdloop deploy`).") from None
    return str(deployment_id)


def _deployment(campaign: Campaign, name: str, schedule: dict, **options):
    from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy
    from prefect.deployments.runner import EntrypointType

    from crowdloop.flows.scheduled import scheduled_round

    return scheduled_round.to_deployment(
        name=name,
        parameters={"campaign_dir": str(campaign.root.resolve())},
        description=f"Scheduled rounds of the crowdloop campaign at {campaign.root.resolve()}",
        tags=["crowdloop"],
        # the runner imports the flow from the installed package, wherever it is started
        entrypoint_type=EntrypointType.MODULE_PATH,
        # one round at a time: a run that comes due while one is going is cancelled by the server
        # before any worker starts a process for it (it would only wait for the campaign's lock)
        concurrency_limit=ConcurrencyLimitConfig(limit=1, collision_strategy=ConcurrencyLimitStrategy.CANCEL_NEW),
        **schedule, **options,
    )
