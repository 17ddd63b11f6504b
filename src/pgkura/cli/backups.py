"""Tasks for backups: take, restore, list, prune and verify them."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from invoke.context import Context
from invoke.exceptions import Exit

from pgkura.cli.output import Output
from pgkura.cli.pitr import base_backup_facts, show_base_backups
from pgkura.cli.wiring import consent, progress, report, say, task

if TYPE_CHECKING:
    from pgkura.backups.store import Backup
    from pgkura.config.settings import Settings
    from pgkura.retention import Policy


def announce(done: Backup) -> None:
    """The line that says a backup is complete, on stdout (and the scheduler's summary)."""
    from pgkura.schedule.result import said
    from pgkura.units import size

    m = done.manifest
    print(said(f"backup: {done.path} ({size(m['size'])}, sha256 {m['sha256'][:16]}…, "
               f"{m['duration_s']} s, {m['source']})"), flush=True)  # fmt: skip


@task(
    help={
        "output": "file or directory to write (default PGKURA_BACKUP_DIR)",
        "keep": "afterwards keep only the newest N of this database's pgkura backups",
        "schema-only": "the schema without data",
        "data-only": "the data without the schema",
        "cluster": "every database and the roles (pg_dumpall)",
        "level": "compression level 1-9 (default PGKURA_BACKUP_LEVEL, 6)",
        "compression": "gzip (.sql.gz, the default) or zstd (.sql.zst); default "
        "PGKURA_BACKUP_COMPRESSION",
        "offsite": "copy it to PGKURA_OFFSITE_URL when that is set (default; --no-offsite skips)",
    }
)
def backup(
    c: Context,
    settings: Settings,
    output: str = "",
    keep: str | None = None,
    schema_only: bool = False,
    data_only: bool = False,
    cluster: bool = False,
    level: str | None = None,
    compression: str | None = None,
    offsite: bool = True,
) -> None:
    """backups: back up the database (and off-site)

    Back up the database to backups/<db>_YYYYMMDD_HHMMSS.sql.gz (with a manifest), and off-site
    when PGKURA_OFFSITE_URL is set.

    Examples:
      invoke db.backup
      invoke db.backup --keep 7
      invoke db.backup --compression zstd --no-offsite
      invoke db.backup --cluster --output /mnt/backups
    """
    from pgkura.backups.take import BackupOptions, take_backup
    from pgkura.schedule import result as run_result
    from pgkura.schedule.alerts import alerting

    alert_url = settings.alert_url
    with alerting(alert_url, "db.backup", on_success=settings.alert_success, log=say,
                  on_interrupt=not run_result.requested()):  # fmt: skip
        options = BackupOptions.from_flags(output=output, keep=keep, level=level,
                                           schema_only=schema_only, data_only=data_only,
                                           cluster=cluster,
                                           compression=compression)  # fmt: skip
        take_backup(settings, output=options.output, mode=options.mode, keep=options.keep,
                    level=options.level, compression=options.compression, offsite=offsite,
                    log=say, progress=progress(), announce=announce,
                    report=report)  # fmt: skip


@task(
    help={
        "file": "the .sql.gz or .sql.zst to restore, or `latest` (the newest backup)",
        "database": "restore into this database instead of the configured one",
        "create": "create the target database if it does not exist",
        "no-safety-backup": "skip the safety copy of the current database taken first",
        "safety": "with `latest`: undo the last restore (put its safety copy back)",
        "remote": "FILE (or `latest`) is in PGKURA_OFFSITE_URL: download and verify it first",
        "yes": "do not ask for confirmation",
    },
    positional=["file"],
)
def restore(
    c: Context,
    settings: Settings,
    file: str,
    database: str = "",
    create: bool = False,
    no_safety_backup: bool = False,
    safety: bool = False,
    remote: bool = False,
    yes: bool = False,
) -> None:
    """backups: restore one, all of it or nothing

    Restore a backup (FILE or `latest`) in one transaction: all of it or nothing.

    Examples:
      invoke db.restore latest
      invoke db.restore backups/app_20261130_031500.sql.gz --yes
      invoke db.restore latest --remote
      invoke db.restore latest --safety    (undo the last restore)
    """
    from pgkura import validation as v

    name = v.DATABASE.flag(database or None, "--database") or ""
    if remote and safety:
        raise Exit("error: --safety undoes a local restore; it cannot be combined with --remote")
    with _local_copy(settings, file, name, remote) as spec:
        _restore(settings, spec, name, create=create, safety_backup=not no_safety_backup,
                 safety=safety, yes=yes)  # fmt: skip


@contextmanager
def _local_copy(settings: Settings, spec: str, name: str, remote: bool) -> Iterator[str]:
    """`spec` itself, or with --remote the path of a downloaded, verified copy (removed after)."""
    if not remote:
        yield spec
        return
    from pgkura.backups.offsite import fetch

    dbname, reporter = name or settings.target.dbname, progress()
    with fetch(settings.offsite, spec, dbname, settings.backup_dir, reporter) as path:
        say(f"downloaded and verified {path.name} from the off-site copies")
        yield str(path)


def _restore(
    settings: Settings, file: str, name: str, *, create: bool, safety_backup: bool,
    safety: bool, yes: bool,
) -> None:  # fmt: skip
    from pgkura.backups.operations import restore_backup
    from pgkura.backups.safety_net import put_back_safety_copy
    from pgkura.units import size

    undone = put_back_safety_copy(settings, file, consent(yes), database=name) if safety else None
    if undone is not None:
        copy, replaced = undone
        print(f"{name or settings.target.dbname} holds again what it held before the last "
              f"restore ({copy.name}); what it held until now is kept as database "
              f"{replaced}")  # fmt: skip
        return
    path, done = restore_backup(settings, file, consent(yes), database=name, create=create,
                                safety_backup=safety_backup, from_safety=safety,
                                log=say, progress=progress())  # fmt: skip
    print(f"restored {path.name} into {done.database} ({size(done.check.plain_size)} of SQL)")
    if done.safety_backup:
        print(f"the previous contents are in {done.safety_backup.path} "
              "(undo with `invoke db.restore latest --safety`)")  # fmt: skip
    if done.safety_copy:
        print(f"the previous contents are in database {done.safety_copy} on the same server "
              "(undo with `invoke db.restore latest --safety`; once satisfied, free its "
              f"space with DROP DATABASE \"{done.safety_copy}\")")  # fmt: skip


@task(
    name="backups",
    help={
        "remote": "list the off-site copies in PGKURA_OFFSITE_URL instead",
        "verify": "read every file in full (gzip/zstd, trailer, SHA-256) instead of trusting "
        "what its manifest recorded when the backup was taken",
        "json": "print the list as JSON (for machines)",
    },
)
def list_backups(
    c: Context, settings: Settings, remote: bool = False, verify: bool = False, json: bool = False
) -> None:
    """backups: list them with size, age and state

    List the backups with database, time, size and age, at once from their manifests.

    Examples:
      invoke db.backups
      invoke db.backups --verify
      invoke db.backups --remote --json
    """
    import time

    from pgkura.backups.archive import verify as check_file
    from pgkura.backups.store import BackupStore
    from pgkura.cli.report import table
    from pgkura.units import age, size

    out = Output.to()
    if remote:
        _list_remote(settings, out, json)
        return
    entries = BackupStore(settings.backup_dir).entries()
    pitr = None
    if settings.pitr.enabled and settings.target.is_container:
        pitr = base_backup_facts(settings)
    items: list[dict[str, Any]] = []
    reporter = progress()
    for e in entries:
        m, stat = e.manifest, e.path.stat()
        if verify:
            problems = check_file(e.path, reporter).problems
            problem = problems[0] if problems else None
        else:
            problem = e.unread_problem()
        items.append({"file": e.path.name, "database": m.get("database"), "mode": m.get("mode"),
                      "purpose": e.purpose if e.ours else None, "created_at": m.get("created_at"),
                      "size": stat.st_size, "age_s": round(time.time() - stat.st_mtime),
                      "ok": problem is None, "problem": problem})  # fmt: skip
    drill = _last_drill(settings)
    if json:
        out.json({"directory": settings.backup_dir, "verified": verify, "backups": items,
                  "point_in_time": pitr, "last_drill": drill})  # fmt: skip
        return
    if pitr is not None:
        show_base_backups(pitr, out)
    if not items:
        out.line(f"no backups in {settings.backup_dir}")
        return
    good, bad = ("ok", "FAILED: ") if verify else ("complete when taken", "CHECK: ")
    rows = [[i["file"], i["database"] or "?", i["mode"] or "?", i["purpose"] or "-",
             i["created_at"] or "?", size(i["size"]), age(i["age_s"]),
             good if i["ok"] else out.paint(bad + i["problem"], "fail")]
            for i in items]  # fmt: skip
    headers = ["file", "database", "mode", "purpose", "created", "size", "age",
               "verifies" if verify else "recorded"]  # fmt: skip
    out.line(table(headers, rows))
    if not verify:
        out.line("(from the manifests; `invoke db.backups --verify` reads every file)")
    if drill:
        out.line(f"last restore drill: {drill.get('started_at', '?')}, "
                 f"{drill.get('outcome', '?')} — {drill.get('summary', '')}")  # fmt: skip


def _last_drill(settings: Settings) -> dict[str, Any] | None:
    """The newest restore drill the scheduler ran, if any: proof that the backups restore."""
    from pgkura.schedule.runner import read_state

    drill: dict[str, Any] | None = read_state(settings).get("jobs", {}).get("drill")
    return drill or None


def _list_remote(settings: Settings, out: Output, json: bool) -> None:
    """The complete off-site backups (data and manifest both there), from their manifests."""
    from pgkura.backups.offsite import RemoteStore, configured
    from pgkura.cli.report import table
    from pgkura.units import size

    offsite = configured(settings.offsite)
    items: list[dict[str, Any]] = [{"file": e.path.name, "database": e.manifest.get("database"),
              "mode": e.manifest.get("mode"), "purpose": e.purpose,
              "created_at": e.manifest.get("created_at"), "size": int(e.manifest.get("size", 0)),
              "sha256": e.manifest.get("sha256")}
             for e in RemoteStore(offsite).entries()]  # fmt: skip
    if json:
        out.json({"offsite": offsite.url, "backups": items})
        return
    if not items:
        out.line(f"no backups in {offsite.url}")
        return
    rows = [[i["file"], i["database"] or "?", i["mode"] or "?", i["purpose"],
             i["created_at"] or "?", size(i["size"]), (i["sha256"] or "?")[:16] + "…"]
            for i in items]  # fmt: skip
    out.line(f"off-site: {offsite.url}")
    out.line(table(["file", "database", "mode", "purpose", "created", "size", "sha256"], rows))


@task(
    help={
        "yes": "delete what the policy does not keep (without it: list what would go, and why)",
        "json": "print the plan and what was deleted as JSON (for machines)",
    }
)
def prune(c: Context, settings: Settings, yes: bool = False, json: bool = False) -> None:
    """backups: prune backups and safety copies by retention

    Apply the retention policy (PGKURA_BACKUP_KEEP and _KEEP_DAILY/WEEKLY/MONTHLY/YEARLY) to the
    backup files, and to the safety copies that restores kept on the server (with no rule set:
    the newest copy alone is kept).

    Examples:
      invoke db.prune
      invoke db.prune --yes
      invoke db.prune --json
    """
    from pgkura.backups import safety_copies
    from pgkura.backups.store import BackupStore

    out = Output.to()
    policy, store = settings.backup_retention, BackupStore(settings.backup_dir)
    name = settings.target.dbname
    files = [{"file": e.path.name, "purpose": e.purpose, "keep": bool(why), "reasons": why}
             for e, why in store.retention_plan(name, "full", policy)]  # fmt: skip
    keep = safety_copies.asked_policy(policy)
    copies = _safety_copies_plan(settings, keep)
    doomed = [c["name"] for c in copies["copies"] if not c["keep"]] if copies else []
    if not json:
        _show_prune_plan(out, settings, files, copies)
    deleted: list[str] = []
    dropped: list[str] = []
    if yes:
        deleted = [path.name for path in store.prune(name, "full", policy)]
        if doomed:
            dropped = safety_copies.prune(settings, name, keep)
    if json:
        out.json({"database": name, "retention": policy.describe(), "dry_run": not yes,
                  "backups": files, "safety_copies": copies,
                  "deleted": deleted, "dropped": dropped})  # fmt: skip
    elif not yes:
        gone = sum(1 for f in files if not f["keep"])
        n = len(doomed)
        also = "" if copies is None else f" and {n} safety cop{'y' if n == 1 else 'ies'}"
        out.line(f"dry run: {gone} file(s){also} would be deleted; run again with --yes to delete")
    else:
        for file in deleted:
            out.line(f"deleted {file}")
        for copy in dropped:
            out.line(f"dropped the safety copy {copy}")


def _safety_copies_plan(settings: Settings, keep: Policy) -> dict[str, Any] | None:
    """What `db.prune` does with the safety copies (databases) on the server: the rule and each
    copy's fate; None when the server cannot be asked (the files are pruned regardless)."""
    from pgkura.backups import safety_copies
    from pgkura.errors import PgkuraError

    name = settings.target.dbname
    try:
        plan = safety_copies.retention_plan(settings, name, keep)
    except PgkuraError as exc:
        say(f"safety copies of {name} on the server: not checked ({exc})")
        return None
    active = settings.backup_retention.active
    rule = keep.describe() if active else "the newest, as no retention rule is set"
    return {"keep_rule": rule,
            "copies": [{"name": c.name, "size": c.size, "keep": bool(why), "reasons": why}
                       for c, why in plan]}  # fmt: skip


def _show_prune_plan(
    out: Output, settings: Settings, files: list[dict[str, Any]], copies: dict[str, Any] | None
) -> None:
    """The plan for a person: each backup file's and safety copy's fate, and why."""
    from pgkura.cli.report import table
    from pgkura.units import size

    name = settings.target.dbname
    out.line(f"retention for {name}: {settings.backup_retention.describe()}")

    def decision(item: dict[str, Any], verb: str) -> str:
        return "keep: " + "; ".join(item["reasons"]) if item["keep"] else verb

    rows = [[f["file"], f["purpose"], decision(f, "DELETE")] for f in files]
    out.line(table(["file", "purpose", "decision"], rows) if rows else "no backups")
    if copies is None:
        return
    if not copies["copies"]:
        out.line(f"no safety copies of {name} on the server")
        return
    out.line(f"safety copies of {name} on the server (databases), keeping {copies['keep_rule']}:")
    rows = [[c["name"], size(c["size"]), decision(c, "DROP")] for c in copies["copies"]]
    out.line(table(["safety copy", "size", "decision"], rows))


@task(
    help={
        "file": "the .sql.gz to check, or `latest` for the newest backup of the database",
        "restore-test": "also restore into a scratch database, count tables and rows, drop it",
        "remote": "FILE (or `latest`) is in PGKURA_OFFSITE_URL: download it, then check it",
        "json": "print the verdict and the facts as JSON (for machines)",
    },
    positional=["file"],
)
def verify(
    c: Context,
    settings: Settings,
    file: str,
    restore_test: bool = False,
    remote: bool = False,
    json: bool = False,
) -> None:
    """backups: check one without restoring it

    Check a backup (gzip, trailer, SHA-256) without restoring it.

    Examples:
      invoke db.verify latest
      invoke db.verify latest --restore-test
      invoke db.verify latest --remote
      invoke db.verify latest --json
    """
    with _local_copy(settings, file, "", remote) as spec:
        _verify(settings, spec, restore_test, as_json=json)


def _verify(settings: Settings, file: str, restore_test: bool, *, as_json: bool = False) -> None:
    from pgkura.backups.archive import verify as check_file
    from pgkura.backups.drills import restore_test as try_restore
    from pgkura.backups.operations import resolve_backup
    from pgkura.schedule.result import said

    path = resolve_backup(settings, file, settings.target.dbname)
    check = check_file(path, progress())
    facts: dict[str, object] = {
        "file": str(path), "ok": check.ok, "kind": check.kind, "sha256": check.sha256,
        "manifest": bool(check.manifest), "problems": check.problems, "restore_test": None,
    }  # fmt: skip
    if not check.ok:
        if as_json:
            Output.to().json(facts)
            raise Exit(code=1)
        raise Exit("error: " + path.name + " does not verify:\n"
                   + "\n".join(f"  - {p}" for p in check.problems))  # fmt: skip
    note = "matches its manifest" if check.manifest else "no manifest to compare"
    line = f"{path.name}: {check.kind} intact, dump complete, sha256 {check.sha256[:16]}… ({note})"
    if not as_json:
        print(line)
    if restore_test:
        tables, rows = try_restore(settings, path, say, progress())
        facts["restore_test"] = {"tables": tables, "rows": rows}
        line = said(f"restore test: {tables} tables, {rows} rows restored into a scratch database")
        if not as_json:
            print(line)
    if as_json:
        Output.to().json(facts)
