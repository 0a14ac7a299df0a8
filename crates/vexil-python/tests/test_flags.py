"""The `vexil` package in a real Python process, in both modes: it sees `vexil flip`
and the runbook's verbatim UPDATE, keeps its last values when its source is cut,
shows up in `vexil instances` as python, and its FLAG_* variables drive the
deprecation table and `vexil doctor` as a Rust process's do."""

from __future__ import annotations

import json
import logging
import os

import pytest

import vexil
from conftest import Proxy, Server, wait_until

# The runbook's Option A, verbatim.
RUNBOOK_UPDATE = (
    "UPDATE console_feature_flags SET value=1, updated_at=CURRENT_TIMESTAMP "
    "WHERE flag_key='my_new_feature' AND env='prod';"
)


def database_mode(env, site, **vars):
    env.setenv("VEXIL_ENV", "prod")
    env.setenv("VEXIL_FLAGS", str(site.flags_file))
    env.setenv("DATABASE_URL", site.database_url)
    for name, value in vars.items():
        env.setenv(name, value)
    return vexil.Flags.from_env()


def remote_mode(env, site, server, key=None, **vars):
    env.setenv("VEXIL_ENV", "prod")
    env.setenv("VEXIL_FLAGS", str(site.flags_file))
    env.setenv("VEXIL_URL", server.url)
    env.setenv("VEXIL_CLIENT_KEY", key or server.client_key())
    for name, value in vars.items():
        env.setenv(name, value)
    return vexil.Flags.from_env()


def declare_my_new_feature(site):
    """The runbook's step: add the flag to the flags file."""
    with open(site.flags_file, "a") as file:
        file.write(
            "\nmy_new_feature:\n  default: false\n  description: \"The runbook's example flag\"\n  risk: low\n"
        )


def test_database_mode_sees_a_flip_and_the_runbooks_update(clean_env, site):
    declare_my_new_feature(site)
    # A row that is off (a flip on, then off), while the variable says on.
    site.run("flip", "my_new_feature", "--env", "prod", "--on", "--as", "root")
    site.run("flip", "my_new_feature", "--env", "prod", "--off", "--as", "root")
    flags = database_mode(clean_env, site, FLAG_CONSOLE_FEATURE_FLAGS_DB="1", FLAG_MY_NEW_FEATURE="1")
    # from_env returned with the row in force: the dormant variable never decided.
    assert flags.is_on("my_new_feature") is False
    assert flags.value("my_new_feature") == (False, "db")
    assert flags.health()["origin"] == "database"
    site.execute(RUNBOOK_UPDATE)
    wait_until(lambda: flags.is_on("my_new_feature"), "the runbook's UPDATE reached the process")
    site.run("flip", "my_new_feature", "--env", "prod", "--off", "--as", "root")
    wait_until(lambda: not flags.is_on("my_new_feature"), "vexil flip reached the process")


def test_remote_mode_sees_a_flip_and_the_runbooks_update(clean_env, site, server):
    declare_my_new_feature(site)
    server.kill()
    server.start()  # the server reads the flags file at start
    site.run("flip", "my_new_feature", "--env", "prod", "--on", "--as", "root")
    site.run("flip", "my_new_feature", "--env", "prod", "--off", "--as", "root")
    # No master switch: a process following a server lets rows decide.
    flags = remote_mode(clean_env, site, server, FLAG_MY_NEW_FEATURE="1")
    wait_until(lambda: flags.value("my_new_feature") == (False, "db"), "the row in force")
    assert flags.health()["origin"] == "server"
    site.execute(RUNBOOK_UPDATE)
    wait_until(lambda: flags.is_on("my_new_feature"), "the runbook's UPDATE reached the process")
    site.run("flip", "my_new_feature", "--env", "prod", "--off", "--as", "root")
    wait_until(lambda: not flags.is_on("my_new_feature"), "vexil flip reached the process")


def test_the_hot_loop_handle_follows_changes(clean_env, sqlite_site):
    flags = database_mode(clean_env, sqlite_site, FLAG_CONSOLE_FEATURE_FLAGS_DB="1")
    dark_mode = flags.flag("dark_mode")
    assert dark_mode.key == "dark_mode"
    assert dark_mode.is_on() is False and not dark_mode
    sqlite_site.run("flip", "dark_mode", "--env", "prod", "--on", "--as", "root")
    wait_until(lambda: dark_mode.is_on(), "the flip reached the handle")
    assert bool(dark_mode) is True


def test_an_undeclared_key_is_off_and_logged_once(clean_env, sqlite_site, caplog):
    flags = database_mode(clean_env, sqlite_site)
    with caplog.at_level(logging.WARNING, logger="vexil"):
        assert flags.is_on("no_such_flag") is False
        assert flags.is_on("no_such_flag") is False
    said = [r for r in caplog.records if "no_such_flag" in r.getMessage()]
    assert len(said) == 1, [r.getMessage() for r in caplog.records]
    assert said[0].name.startswith("vexil")
    assert flags.value("no_such_flag") is None


def test_a_cut_database_leaves_the_last_values(clean_env, tmp_path):
    import subprocess
    import secrets

    from conftest import POSTGRES, Site

    name = f"vexil_py_{secrets.token_hex(6)}"
    subprocess.run(["psql", "-X", "-q", f"{POSTGRES}/postgres", "-c", f"CREATE DATABASE {name}"], check=True)
    proxy = Proxy(("127.0.0.1", 5432))
    try:
        site = Site(tmp_path, f"{POSTGRES}/{name}")
        site.run("migrate")
        site.run("user", "add", "root", "--role", "superadmin", stdin="a long enough password\n")
        site.run("flip", "dark_mode", "--env", "prod", "--on", "--as", "root")
        clean_env.setenv("VEXIL_CACHE_TTL", "1")
        flags = database_mode(
            clean_env,
            site,
            DATABASE_URL=f"postgres://postgres@127.0.0.1:{proxy.port}/{name}",
            FLAG_CONSOLE_FEATURE_FLAGS_DB="1",
        )
        assert flags.is_on("dark_mode") is True
        proxy.cut()
        wait_until(lambda: not flags.health()["source_up"], "the process saw the database go")
        # The last values, never the variables' or the YAML defaults'.
        assert flags.value("dark_mode") == (True, "db")
        site.run("flip", "dark_mode", "--env", "prod", "--off", "--as", "root")
        proxy.restore()
        wait_until(lambda: not flags.is_on("dark_mode"), "the change made while cut off arrived")
        wait_until(lambda: flags.health()["source_up"], "the database is back")
    finally:
        proxy.close()
        subprocess.run(
            ["psql", "-X", "-q", f"{POSTGRES}/postgres", "-c", f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"],
            check=False,
        )


def test_a_stopped_server_leaves_the_last_values(clean_env, site, server):
    site.run("flip", "dark_mode", "--env", "prod", "--on", "--as", "root")
    flags = remote_mode(clean_env, site, server)
    wait_until(lambda: flags.is_on("dark_mode"), "the row")
    server.kill()
    wait_until(lambda: not flags.health()["source_up"], "the process saw the server go")
    assert flags.value("dark_mode") == (True, "db")
    site.run("flip", "dark_mode", "--env", "prod", "--off", "--as", "root")
    server.start()
    wait_until(lambda: not flags.is_on("dark_mode"), "the change made while it was down arrived")


def instances(site) -> list[dict]:
    return json.loads(site.run("instances", "--json"))


def test_a_python_process_is_a_live_instance_in_both_modes(clean_env, site, server):
    local = database_mode(clean_env, site, FLAG_DARK_MODE="1")
    wait_until(lambda: local.health()["reported_at"], "a first report")
    clean_env.delenv("DATABASE_URL")
    following = remote_mode(clean_env, site, server, key=server.client_key(app="raxx-console-prod"))
    wait_until(lambda: following.health()["reported_at"], "a first report")
    mine = [i for i in instances(site) if i["pid"] == os.getpid()]
    assert {i["language"] for i in mine} == {"python"}, mine
    assert sorted(i["transport"] for i in mine) == ["database", "server"], mine
    for process in mine:
        assert process["version"] == vexil.__version__
        assert process["env_layer"]["dark_mode"] == "on"
    assert [i["application"] for i in mine if i["transport"] == "server"] == ["raxx-console-prod"]


def test_its_variables_drive_the_deprecation_table_and_doctor(clean_env, site):
    # As crates/vexil-cli/tests/it/deprecation.rs, doctor.rs and reconcile.rs do with
    # Rust processes: a console process on the DB layer, then Raptor's on Option B.
    clean_env.setenv("VEXIL_ENV", "staging")
    clean_env.setenv("VEXIL_FLAGS", str(site.flags_file))
    clean_env.setenv("DATABASE_URL", site.database_url)
    clean_env.setenv("VEXIL_APP", "raxx-console-staging")
    clean_env.setenv("FLAG_CONSOLE_FEATURE_FLAGS_DB", "1")
    clean_env.setenv("FLAG_DARK_MODE", "1")
    clean_env.setenv("FLAG_CONSOLE_FLAG_MGMT", "1")
    staging = vexil.Flags.from_env()
    wait_until(lambda: staging.health()["reported_at"], "a first report")
    doctor = site.run_failing("doctor", "--gone", "FLAG_CONSOLE_FLAG_MGMT")
    assert "FAIL     variables_dormant" in doctor
    assert "FLAG_DARK_MODE in staging: no DB row" in doctor
    assert "FLAG_CONSOLE_FLAG_MGMT in staging: still set on " in doctor, doctor
    assert " of raxx-console-staging" in doctor, doctor
    site.run("flip", "dark_mode", "--env", "staging", "--off", "--as", "root")
    table = json.loads(site.run("deprecation", "--json"))
    line = next(l for l in table if l["flag"] == "dark_mode" and l["env"] == "staging")
    assert (line["variable"], line["status"], line["row"], line["flips"], line["reporting"]) == (
        "FLAG_DARK_MODE",
        "dormant",
        False,
        1,
        1,
    ), line
    assert len(line["set_on"]) == 1

    # Raptor's process on Option B: the master switch off, its variable on. Removing
    # the variable would turn dark_mode off there: in use, for the env and that app.
    clean_env.setenv("VEXIL_APP", "raxx-api-staging")
    clean_env.setenv("FLAG_CONSOLE_FEATURE_FLAGS_DB", "0")
    option_b = vexil.Flags.from_env()
    wait_until(lambda: option_b.health()["reported_at"], "a first report")
    assert option_b.is_on("dark_mode") is True
    by_app = json.loads(site.run("deprecation", "--json", "--by-app", "--env", "staging"))
    statuses = {l["app"]: l["status"] for l in by_app if l["flag"] == "dark_mode"}
    assert statuses == {"raxx-api-staging": "in_use", "raxx-console-staging": "dormant"}, by_app
    found = json.loads(site.run("reconcile", "--json"))["findings"]
    finding = next(f for f in found if f["flag"] == "dark_mode" and f["env"] == "staging")
    assert finding["divergent"][0]["app"] == "raxx-api-staging", finding
    assert finding["divergent"][0]["cause"] == "master_off", finding
    assert finding["reenable"] == ["raxx-api-staging"], finding
    # The console process runs the row's value: the flip is not proposed.
    assert (finding["following"], finding["proposed"]) == (1, False), finding


def test_a_handle_made_before_fork_refuses_clearly_and_one_made_after_works(clean_env, sqlite_site):
    flags = database_mode(clean_env, sqlite_site, FLAG_CONSOLE_FEATURE_FLAGS_DB="1")
    handle = flags.flag("dark_mode")
    assert flags.is_on("dark_mode") is False
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        # The child: report back through the pipe, then leave without cleanup.
        outcome = {}
        try:
            flags.is_on("dark_mode")
            outcome["inherited"] = "answered"
        except vexil.Error as error:
            outcome["inherited"] = str(error)
        try:
            handle.is_on()
            outcome["handle"] = "answered"
        except vexil.Error as error:
            outcome["handle"] = str(error)
        try:
            fresh = vexil.Flags.from_env()
            outcome["fresh"] = fresh.is_on("search_typo_tolerance")
            sqlite_site.run("flip", "dark_mode", "--env", "prod", "--on", "--as", "root")
            wait_until(lambda: fresh.is_on("dark_mode"), "the flip reached the child's handle")
            outcome["follows"] = True
        except BaseException as error:  # noqa: BLE001 - reported to the parent
            outcome["fresh_error"] = repr(error)
        os.write(write, json.dumps(outcome).encode())
        os._exit(0)
    os.close(write)
    _, status = os.waitpid(pid, 0)
    outcome = json.loads(os.read(read, 65536).decode())
    os.close(read)
    assert status == 0
    assert "before fork()" in outcome["inherited"] and "create vexil.Flags in each worker" in outcome["inherited"]
    assert "before fork()" in outcome["handle"]
    assert outcome.get("fresh") is True, outcome
    assert outcome.get("follows") is True, outcome
    # The parent's handle is untouched, and follows the child's flip.
    wait_until(lambda: flags.is_on("dark_mode"), "the parent still follows")


def test_bad_settings_are_clear_errors(clean_env, sqlite_site):
    clean_env.setenv("VEXIL_ENV", "prod")
    clean_env.setenv("VEXIL_FLAGS", str(sqlite_site.flags_file))
    clean_env.setenv("DATABASE_URL", sqlite_site.database_url)
    clean_env.setenv("VEXIL_URL", "http://127.0.0.1:9")
    clean_env.setenv("VEXIL_CLIENT_KEY", "vxc_" + "0" * 64)
    with pytest.raises(vexil.Error, match="both DATABASE_URL and VEXIL_URL are set"):
        vexil.Flags.from_env()
    clean_env.delenv("DATABASE_URL")
    clean_env.setenv("VEXIL_CLIENT_KEY", "not-a-key")
    with pytest.raises(vexil.Error, match="VEXIL_CLIENT_KEY is not a client key") as raised:
        vexil.Flags.from_env()
    assert "not-a-key" not in str(raised.value)
    clean_env.setenv("VEXIL_ENV", "qa")
    with pytest.raises(vexil.Error, match="unknown env 'qa'"):
        vexil.Flags.from_env()
    clean_env.setenv("VEXIL_ENV", "prod")
    clean_env.setenv("VEXIL_FLAGS", str(sqlite_site.dir / "missing.yaml"))
    clean_env.delenv("VEXIL_URL")
    clean_env.delenv("VEXIL_CLIENT_KEY")
    with pytest.raises(vexil.Error, match="missing.yaml"):
        vexil.Flags.from_env()


def test_the_package_ships_type_stubs():
    package = os.path.dirname(vexil.__file__)
    assert os.path.exists(os.path.join(package, "__init__.pyi")), os.listdir(package)
    assert os.path.exists(os.path.join(package, "py.typed")), os.listdir(package)
