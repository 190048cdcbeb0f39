"""Dependency-injector containers: the core wiring every entrypoint shares, and the CLI's.

Heavy adapters (DuckDB, readers, openpyxl) are imported inside provider
functions, so building a container costs nothing until a provider is used. AWS
mode's containers (the Lambda's, the worker's, reconcile's) are in
aws_containers.py: the CLI's ingest then imports none of the event handling,
queue worker or reconciliation it never runs (about 25 ms of a cold start here,
`python -X importtime`).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from concurrent.futures import Executor, ThreadPoolExecutor
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from application.infer import InferTableContract
from application.ingest import IngestPassengerFile
from application.pipeline import IngestSettings
from application.ports import (
    FileSource,
    ProgressListener,
    RejectsReportWriter,
    SecretProvider,
    Warehouse,
)
from application.tables import InitializeTables, ShowHistory
from application.validate import ValidateFile
from domain.contracts import Catalog, catalog_from_mapping
from domain.errors import ConfigurationError
from domain.routing import Router, rules_from_config
from entrypoints.lean_imports import containers, providers

if TYPE_CHECKING:
    from infrastructure.readers.isolated import IsolatedWorkbookReader

ROOT = Path(__file__).resolve().parents[1]
LOCAL_CONFIG = Path("config") / "datalakep.yaml"


def shipped_config() -> Path:
    """The default config: config/datalakep.yaml, the one file in the repository.

    A wheel ships that same file as the package ``datalakep_config``
    (pyproject's package-dir), so an install outside the repository has it too.
    """
    checkout = ROOT / LOCAL_CONFIG
    if checkout.is_file():
        return checkout
    return Path(str(resources.files("datalakep_config").joinpath("datalakep.yaml")))


DEFAULT_CONFIG = shipped_config()


def user_config_path(explicit: str | None = None) -> Path | None:
    """--config, else $DATALAKEP_CONFIG, else ./config/datalakep.yaml if present."""
    chosen = explicit or os.environ.get("DATALAKEP_CONFIG")
    if chosen:
        path = Path(chosen)
        if not path.is_file():
            raise ConfigurationError(f"config file {chosen} does not exist", path=chosen)
        return path
    return LOCAL_CONFIG if LOCAL_CONFIG.is_file() else None


def config_path(explicit: str | None = None) -> Path:
    """The user's config (see :func:`user_config_path`), else the shipped one."""
    return user_config_path(explicit) or DEFAULT_CONFIG


def load_config_file(path: Path) -> dict[str, Any]:
    """The YAML mapping in ``path``; a syntax error names the file, line and column."""
    import yaml

    # libyaml's loader where PyYAML was built with it: 2 ms for the shipped config
    # against 15 ms in pure Python, on every cold start.
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=loader)  # noqa: S506 - a SafeLoader
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = f"{path}, line {mark.line + 1}, column {mark.column + 1}" if mark else str(path)
        raise ConfigurationError(
            f"{where}: {error.problem or error.context or 'invalid YAML'}", path=str(path)
        ) from None
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        raise ConfigurationError(f"{path}: not valid YAML ({error})", path=str(path)) from None
    if not isinstance(data, dict):
        raise ConfigurationError(f"{path}: the config must be a mapping of sections")
    return data


# Sections whose every key the shipped config states, so any other key is a typo.
_CLOSED_SECTIONS = ("aws", "worker")
# Set by the entrypoints from flags and the environment, never written in a file.
_RUNTIME_KEYS = {"worker": frozenset({"queue_url"})}


def check_known_keys(data: Mapping[str, Any], path: Path) -> None:
    """Refuse keys the shipped config does not know: a typo must not fall back to a default.

    Top-level sections, and the keys of the sections listed in ``_CLOSED_SECTIONS``.
    """
    shipped = load_config_file(DEFAULT_CONFIG)
    unknown = [str(k) for k in data if k not in shipped]
    for section in _CLOSED_SECTIONS:
        given = data.get(section)
        if isinstance(given, Mapping):
            known = set(shipped.get(section) or {}) | _RUNTIME_KEYS.get(section, frozenset())
            unknown += [f"{section}.{k}" for k in given if k not in known]
    if unknown:
        raise ConfigurationError(
            f"{path}: unknown setting(s): {', '.join(unknown)}", path=str(path), keys=unknown
        )


def configure(container: Core, config_file: str | None, warehouse_url: str | None) -> None:
    path = config_path(config_file)
    data = load_config_file(path)
    check_known_keys(data, path)
    container.config.from_dict(data)
    url = warehouse_url or os.environ.get("DATALAKEP_WAREHOUSE")
    if url:
        container.config.warehouse.url.from_value(url)
    if not container.config.warehouse.url():
        container.config.warehouse.url.from_value("duckdb:///data/warehouse.duckdb")


def shipped_setting(section: str, name: str, value: Any) -> Any:
    """``value``, else the shipped config's ``<section>.<name>``: defaults are stated only there.

    A user's config may leave a section out (``datalakep init`` copies the
    shipped file, but older configs predate some settings).
    """
    if value is None:
        value = (load_config_file(DEFAULT_CONFIG).get(section) or {}).get(name)
    if value is None:
        raise ConfigurationError(f"{section}.{name} is not set in the config")
    return value


def build_catalog(tables: Mapping[str, Any], defaults: Mapping[str, Any] | None) -> Catalog:
    return catalog_from_mapping(tables, defaults)


def build_router(catalog: Catalog, routing: list[Mapping[str, Any]] | None) -> Router:
    return Router(catalog, rules_from_config(routing))


def build_reader(limits: Mapping[str, Any] | None) -> IsolatedWorkbookReader:
    from infrastructure.readers.isolated import IsolatedWorkbookReader
    from infrastructure.readers.limits import ReaderLimits

    # Spreadsheets are parsed in a child process with its own memory and CPU
    # limits: a file crafted to crash the parser costs that file, not the worker.
    return IsolatedWorkbookReader(ReaderLimits.from_mapping(limits or {}))


def open_reader(limits: Mapping[str, Any] | None) -> Iterator[IsolatedWorkbookReader]:
    """A Resource: the reader keeps a parser child between files, stopped at shutdown."""
    reader = build_reader(limits)
    try:
        yield reader
    finally:
        reader.close()


def build_settings(ingest: Mapping[str, Any] | None) -> IngestSettings:
    return IngestSettings(**(ingest or {}))


def build_validation_pool(threads: int | None) -> Iterator[Executor | None]:
    """Threads for checking long sheets' columns, one pool for the process's life.

    ``validation.threads`` in the configuration; absent or 1 checks columns in the
    ingest's own thread. The threads outlive each sheet but are idle, blocked on the
    pool's queue, whenever a parser child is forked: the ingest waits for a sheet's
    checks before it opens the next workbook, so no fork copies a lock held mid-Arrow.
    """
    if not threads or threads <= 1:
        yield None
        return
    pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="datalakep-validate")
    try:
        yield pool
    finally:
        pool.shutdown(wait=True)


def build_secrets(ttl_seconds: float | None) -> SecretProvider:
    # boto3 is imported on the first secret read, not here: most runs need none.
    from infrastructure.aws.secrets import SecretsManagerSecretProvider

    return SecretsManagerSecretProvider(ttl_seconds=ttl_seconds)


def open_warehouse(
    url: str,
    ledger_table: str | None,
    options: Mapping[str, Any] | None = None,
    secrets: SecretProvider | None = None,
) -> Iterator[Warehouse]:
    """A Resource: the connection is opened lazily by the adapter and closed at shutdown.

    ``options`` is the config's whole ``warehouse`` section (sslmode, retries, password...).
    """
    from infrastructure.warehouse.factory import warehouse_from_url
    from infrastructure.warehouse.sql.ledger import DEFAULT_LEDGER_TABLE

    warehouse = warehouse_from_url(
        url,
        ledger_table=ledger_table or DEFAULT_LEDGER_TABLE,
        options=options,
        secrets=secrets,
    )
    try:
        yield warehouse
    finally:
        warehouse.close()


def build_local_reports(directory: str | None) -> RejectsReportWriter:
    from infrastructure.reports.local import LocalRejectsReportWriter

    return LocalRejectsReportWriter(Path(directory or "data/rejects"))


def build_local_files() -> FileSource:
    from infrastructure.files.local import LocalFileSource

    return LocalFileSource()


class Core(containers.DeclarativeContainer):
    """What every entrypoint needs: contracts, routing, readers, the warehouse."""

    config = providers.Configuration(strict=False)

    catalog = providers.Singleton(build_catalog, config.tables, config.defaults)
    router = providers.Singleton(build_router, catalog, config.routing)
    reader = providers.Resource(open_reader, config.limits)
    settings = providers.Singleton(build_settings, config.ingest)
    validation_pool = providers.Resource(build_validation_pool, config.validation.threads)
    secrets = providers.Singleton(build_secrets, config.warehouse.secret_ttl_seconds)
    warehouse = providers.Resource(
        open_warehouse,
        config.warehouse.url,
        config.warehouse.ledger_table,
        config.warehouse,
        secrets,
    )


def ingest_factory(
    files: providers.Provider[Any],
    reports: providers.Provider[Any],
    progress: providers.Provider[Any],
    outcomes: providers.Provider[Any],
) -> providers.Factory[IngestPassengerFile]:
    """The use case on Core's reader, router and warehouse; entrypoints choose the I/O."""
    return providers.Factory(
        IngestPassengerFile,
        files=files,
        reader=Core.reader,
        router=Core.router,
        warehouse=Core.warehouse,
        reports=reports,
        settings=Core.settings,
        progress=progress,
        outcomes=outcomes,
        validation_pool=Core.validation_pool,
    )


class CliContainer(Core):
    files = providers.Singleton(build_local_files)
    reports = providers.Singleton(build_local_reports, Core.config.rejects.directory)
    progress: providers.Provider[ProgressListener | None] = providers.Object(None)

    # The CLI's outcome is its output and its log line; no metrics or notifications.
    ingest = ingest_factory(files, reports, progress, providers.Object(()))
    # No warehouse: a dry run must not connect to it or read its secret.
    validate = providers.Factory(
        ValidateFile,
        files=files,
        reader=Core.reader,
        router=Core.router,
        reports=reports,
        settings=Core.settings,
        progress=progress,
        validation_pool=Core.validation_pool,
    )
    init_tables = providers.Factory(
        InitializeTables, catalog=Core.catalog, warehouse=Core.warehouse
    )
    history = providers.Factory(ShowHistory, warehouse=Core.warehouse)
    infer = providers.Factory(
        InferTableContract,
        files=files,
        reader=Core.reader,
        header_search_rows=Core.settings.provided.header_search_rows,
    )


def cli_container(config_file: str | None = None, warehouse_url: str | None = None) -> CliContainer:
    container = CliContainer()
    configure(container, config_file, warehouse_url)
    return container
