"""The container image, checked without a Docker engine.

No engine runs where these tests run, so the Dockerfile and .dockerignore are
parsed here (a small parser for the subset of the syntax the Dockerfile uses:
line continuations, comments, exec (JSON) and shell forms) and every claim the
image makes is checked against the repository: the base image, the Lambda
handler, the worker command, the copied sources, where dependencies come from,
and the absence of secrets.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import json
import re
import shlex
import tomllib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"

LAMBDA_BASE = "public.ecr.aws/lambda/python"
# The base image's own environment, as documented by AWS; the Dockerfile's
# ${LAMBDA_TASK_ROOT} and ${PATH} expand against these.
BASE_ENV = {
    "LAMBDA_TASK_ROOT": "/var/task",
    "LAMBDA_RUNTIME_DIR": "/var/runtime",
    "PATH": "/var/lang/bin:/usr/local/bin:/usr/bin/:/bin:/opt/bin",
}
# Exactly what the image is built from; anything more is a leak into the image.
EXPECTED_SOURCES = {
    "pyproject.toml",
    "README.md",
    "domain",
    "application",
    "infrastructure",
    "entrypoints",
    "config",
}
# Files the .dockerignore may drop from inside a copied directory.
CACHE_PARTS = {"__pycache__", ".mypy_cache", ".ruff_cache", ".pytest_cache", ".hypothesis"}
SECRET_NAME = re.compile(
    r"SECRET|PASSWORD|PASSWD|TOKEN|PRIVATE_KEY|API_KEY|CREDENTIAL|AWS_ACCESS_KEY_ID",
    re.IGNORECASE,
)
SECRET_FILE = re.compile(
    r"^(\.env(\..*)?|credentials|\.aws|\.netrc|\.pypirc|id_(rsa|dsa|ecdsa|ed25519).*"
    r"|.*\.(pem|key|p12|pfx))$",
    re.IGNORECASE,
)
SECRET_TEXT = re.compile(r"AKIA[0-9A-Z]{16}|-----BEGIN [A-Z ]*PRIVATE KEY-----")


# --------------------------------------------------------------------------
# Dockerfile parsing
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Instruction:
    keyword: str  # upper case: FROM, RUN, COPY, ...
    args: str  # everything after the keyword, continuation lines joined
    line: int  # where the instruction starts, for failure messages

    def exec_form(self) -> list[str] | None:
        """The JSON-array form's elements, or None for the shell form."""
        if not self.args.startswith("["):
            return None
        try:
            parsed = json.loads(self.args)
        except json.JSONDecodeError:
            return None  # Docker too falls back to the shell form here
        if isinstance(parsed, list) and all(isinstance(p, str) for p in parsed):
            return parsed
        return None

    def words(self) -> list[str]:
        exec_form = self.exec_form()
        return exec_form if exec_form is not None else shlex.split(self.args)


@dataclass
class Stage:
    image: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]


@dataclass(frozen=True)
class Copy:
    sources: list[str]
    dest: str
    from_stage: str | None
    line: int


@dataclass(frozen=True)
class Dockerfile:
    stages: list[Stage]
    comments: list[str]

    @property
    def final(self) -> Stage:
        return self.stages[-1]

    def external_images(self) -> list[str]:
        """FROM images that are not earlier stages of this Dockerfile."""
        names = {s.name for s in self.stages if s.name}
        return [s.image for s in self.stages if s.image not in names]


def parse_dockerfile(text: str) -> Dockerfile:
    """Instructions grouped by stage, plus the comment lines.

    Handles the default escape character only (no `# escape=` directive) and
    no heredocs; the Dockerfile uses neither. As in Docker, comment lines and
    blank lines inside a continuation are dropped.
    """
    comments: list[str] = []
    instructions: list[Instruction] = []
    pending: list[str] = []
    start = 0

    def flush() -> None:
        logical = " ".join(part.strip() for part in pending).strip()
        pending.clear()
        if logical:
            keyword, _, args = logical.partition(" ")
            instructions.append(Instruction(keyword.upper(), args.strip(), start))

    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if stripped.startswith("#"):
            comments.append(stripped[1:].strip())
            continue
        if not stripped:
            continue
        if not pending:
            start = number
        if stripped.endswith("\\"):
            pending.append(stripped[:-1])
            continue
        pending.append(stripped)
        flush()
    flush()  # a continuation left open at the end of the file

    stages: list[Stage] = []
    for instruction in instructions:
        if instruction.keyword == "FROM":
            words = [w for w in instruction.words() if not w.startswith("--")]
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            stages.append(Stage(words[0], name))
        elif stages:
            stages[-1].instructions.append(instruction)
        # ARG before the first FROM: unused here; the base image is literal.
    return Dockerfile(stages, comments)


def copies(stage: Stage) -> list[Copy]:
    found: list[Copy] = []
    for instruction in stage.instructions:
        if instruction.keyword not in {"COPY", "ADD"}:
            continue
        words = instruction.words()
        flags = dict(w[2:].partition("=")[::2] for w in words if w.startswith("--"))
        paths = [w for w in words if not w.startswith("--")]
        found.append(Copy(paths[:-1], paths[-1], flags.get("from"), instruction.line))
    return found


def expand(value: str, env: dict[str, str]) -> str:
    """${VAR} and $VAR from the environment so far; unknown names stay as written."""

    def lookup(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        return env.get(name, match.group(0))

    return re.sub(r"\$\{(\w+)\}|\$(\w+)", lookup, value)


def stage_env(stage: Stage, base: dict[str, str]) -> dict[str, str]:
    """The environment at the end of the stage: the base image's plus every ENV."""
    env = dict(base)
    for instruction in stage.all("ENV"):
        for key, value in env_pairs(instruction):
            # Docker expands an ENV's values against the environment before it.
            env[key] = expand(value, env)
    return env


def env_pairs(instruction: Instruction) -> list[tuple[str, str]]:
    words = shlex.split(instruction.args)
    if words and "=" not in words[0]:  # legacy `ENV KEY value with spaces`
        return [(words[0], " ".join(words[1:]))]
    return [(w.partition("=")[0], w.partition("=")[2]) for w in words]


def arg_names(instruction: Instruction) -> list[str]:
    return [w.partition("=")[0] for w in shlex.split(instruction.args)]


# --------------------------------------------------------------------------
# pip install commands inside RUN
# --------------------------------------------------------------------------

# pip options that take a value as the next word; the value is not a package.
PIP_VALUE_OPTIONS = {
    "-r",
    "--requirement",
    "-c",
    "--constraint",
    "-t",
    "--target",
    "--prefix",
    "--root",
    "-i",
    "--index-url",
    "--extra-index-url",
    "-f",
    "--find-links",
    "--platform",
    "--python-version",
    "--implementation",
    "--abi",
    "--only-binary",
    "--no-binary",
    "--progress-bar",
    "--cache-dir",
    "--src",
    "--upgrade-strategy",
    "--report",
    "-C",
    "--config-settings",
    "--trusted-host",
    "--log",
    "--proxy",
    "--timeout",
    "--retries",
    "--python",
    "--root-user-action",
}
SHELL_OPERATORS = {"&&", "||", ";", "|", "&", "(", ")"}
REDIRECTIONS = {">", ">>", "<", "2>", ">&"}


@dataclass
class PipInstall:
    line: int
    run_text: str  # the whole RUN, to see where a requirements file came from
    requirements: list[str] = field(default_factory=list)
    options: dict[str, list[str]] = field(default_factory=dict)
    editable: bool = False


def shell_segments(command: str) -> Iterator[list[str]]:
    """Simple commands of a shell line: split at &&, ||, ;, | and drop redirections."""
    lexer = shlex.shlex(command, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    segment: list[str] = []
    skip_target = False
    for token in lexer:
        if skip_target:
            skip_target = False
        elif token in SHELL_OPERATORS:
            yield segment
            segment = []
        elif token in REDIRECTIONS:
            skip_target = True
        else:
            segment.append(token)
    yield segment


def pip_installs(dockerfile: Dockerfile) -> list[PipInstall]:
    found: list[PipInstall] = []
    for stage in dockerfile.stages:
        for run in stage.all("RUN"):
            exec_form = run.exec_form()
            command = shlex.join(exec_form) if exec_form is not None else run.args
            for words in shell_segments(command):
                install = _pip_install(words, run)
                if install is not None:
                    found.append(install)
    return found


def _pip_install(words: Sequence[str], run: Instruction) -> PipInstall | None:
    """`pip install ...` anywhere in the words (python -m pip, pip3, xargs pip, ...)."""
    for i, word in enumerate(words[:-1]):
        is_pip = re.fullmatch(r"pip(\d+(\.\d+)?)?", PurePosixPath(word).name) is not None
        if is_pip and words[i + 1] == "install":
            args = list(words[i + 2 :])
            break
    else:
        return None
    install = PipInstall(run.line, run.args)
    while args:
        word = args.pop(0)
        if word in {"-e", "--editable"} or word.startswith("--editable="):
            install.editable = True
        if word in PIP_VALUE_OPTIONS and args:
            install.options.setdefault(word, []).append(args.pop(0))
        elif word.startswith("--") and "=" in word:
            key, _, value = word.partition("=")
            install.options.setdefault(key, []).append(value)
        elif not word.startswith("-"):
            install.requirements.append(word)
    return install


def canonical(name: str) -> str:
    """PEP 503 normalised project name."""
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(requirement: str) -> str:
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
    assert match, f"cannot read a project name from {requirement!r}"
    return canonical(match.group(1))


def is_project(requirement: str) -> bool:
    """`.`, `./` or `.[extra]`: the copied project itself."""
    return re.fullmatch(r"\./?(\[.*\])?", requirement) is not None


# --------------------------------------------------------------------------
# .dockerignore
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class IgnoreRule:
    regex: re.Pattern[str]
    negated: bool


def parse_dockerignore(text: str) -> list[IgnoreRule]:
    rules: list[IgnoreRule] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        pattern = str(PurePosixPath(line.removeprefix("!").strip().lstrip("/")))
        rules.append(IgnoreRule(re.compile(_glob_regex(pattern)), negated))
    return rules


def _glob_regex(pattern: str) -> str:
    """Docker's pattern syntax (Go filepath.Match plus `**`) as an anchored regex."""
    out, i = [], 0
    while i < len(pattern):
        char = pattern[i]
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
            continue
        if pattern.startswith("**", i):
            out.append(".*")
            i += 2
            continue
        if char == "*":
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif char == "[":
            end = pattern.index("]", i + 1)
            out.append("[" + pattern[i + 1 : end].replace("^", "\\^", 1) + "]")
            i = end
        elif char == "\\" and i + 1 < len(pattern):
            i += 1
            out.append(re.escape(pattern[i]))
        else:
            out.append(re.escape(char))
        i += 1
    return "^" + "".join(out) + "$"


def is_ignored(rules: Sequence[IgnoreRule], path: str) -> bool:
    """Whether the context leaves `path` out: the last rule matching it or a parent wins."""
    parts = PurePosixPath(path).parts
    candidates = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    ignored = False
    for rule in rules:
        if any(rule.regex.match(candidate) for candidate in candidates):
            ignored = not rule.negated
    return ignored


# --------------------------------------------------------------------------
# Fixtures
# --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dockerfile() -> Dockerfile:
    parsed = parse_dockerfile(DOCKERFILE.read_text())
    assert parsed.stages, "the Dockerfile has no FROM"
    return parsed


@pytest.fixture(scope="module")
def ignore_rules() -> list[IgnoreRule]:
    return parse_dockerignore(DOCKERIGNORE.read_text())


@pytest.fixture(scope="module")
def pyproject() -> dict[str, Any]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


@pytest.fixture(scope="module")
def final_env(dockerfile: Dockerfile) -> dict[str, str]:
    return stage_env(dockerfile.final, BASE_ENV)


def image_path_to_repo(dockerfile: Dockerfile, image_path: str) -> Path | None:
    """The repository file a final-stage COPY puts at `image_path`, if any."""
    env = stage_env(dockerfile.final, BASE_ENV)
    target = PurePosixPath(image_path)
    for copy in copies(dockerfile.final):
        if copy.from_stage is not None or len(copy.sources) != 1:
            continue
        dest = PurePosixPath(expand(copy.dest, env))
        if target.is_relative_to(dest):
            return ROOT / copy.sources[0] / target.relative_to(dest)
    return None


# --------------------------------------------------------------------------
# The parsers themselves, on small inputs, so the checks below mean something
# --------------------------------------------------------------------------


def test_parser_joins_continuations_and_drops_comments() -> None:
    parsed = parse_dockerfile(
        "# top comment\n"
        "FROM base:1 AS build\n"
        "RUN a \\\n"
        "    # a comment inside the continuation\n"
        "    && b\n"
        "\n"
        "FROM base:1\n"
        'COPY --from=build /opt/x "/var/task/"\n'
        'CMD ["m.f"]\n'
        "ENTRYPOINT echo hi\n"
    )
    assert [s.name for s in parsed.stages] == ["build", None]
    assert parsed.external_images() == ["base:1", "base:1"]
    assert parsed.stages[0].all("RUN")[0].args == "a && b"
    assert "a comment inside the continuation" in parsed.comments
    assert copies(parsed.final) == [Copy(["/opt/x"], "/var/task/", "build", 8)]
    assert parsed.final.all("CMD")[0].exec_form() == ["m.f"]
    assert parsed.final.all("ENTRYPOINT")[0].exec_form() is None


def test_pip_scanner_separates_options_requirements_and_commands() -> None:
    run = Instruction(
        "RUN",
        "python -c 'print(1)' > /tmp/r.txt && pip install --no-cache-dir -t /opt/x "
        "-r /tmp/r.txt 'boto3>=1' --only-binary=:all: . ; python -m pip install -e .",
        1,
    )
    installs = pip_installs(Dockerfile([Stage("img", None, [run])], []))
    assert [(i.requirements, i.editable) for i in installs] == [
        (["boto3>=1", "."], False),
        (["."], True),
    ]
    assert installs[0].options["-r"] == ["/tmp/r.txt"]
    assert installs[0].options["--only-binary"] == [":all:"]


def test_dockerignore_semantics() -> None:
    rules = parse_dockerignore("tests\n/data/\n**/__pycache__\n*.log\n!keep.log\n")
    assert is_ignored(rules, "tests/unit/test_x.py")  # a parent directory matches
    assert is_ignored(rules, "data")
    assert is_ignored(rules, "domain/__pycache__/x.pyc")  # ** reaches nested dirs
    assert is_ignored(rules, "__pycache__/x.pyc")  # ** also matches zero dirs
    assert is_ignored(rules, "a.log") and not is_ignored(rules, "keep.log")  # last rule wins
    assert not is_ignored(rules, "domain/tests.py")
    assert not is_ignored(rules, "sub/a.log")  # a bare pattern is anchored at the root


# --------------------------------------------------------------------------
# The image
# --------------------------------------------------------------------------


def test_base_image_is_the_lambda_python_image_with_a_pinned_tag(
    dockerfile: Dockerfile, pyproject: dict[str, Any]
) -> None:
    python = re.search(r"(\d+\.\d+)", pyproject["project"]["requires-python"])
    assert python, "requires-python names no version"
    images = dockerfile.external_images()
    # Every stage builds on the same image: wheels resolved in the builder
    # must match the runtime's Python ABI and glibc.
    assert len(set(images)) == 1, f"stages use different base images: {images}"
    reference, _, digest = images[0].partition("@")
    repository, _, tag = reference.rpartition(":")
    if "/" in tag:  # the colon was a registry port, so there is no tag
        repository, tag = reference, ""
    assert repository == LAMBDA_BASE, f"base image is {images[0]}, not {LAMBDA_BASE}"
    assert tag and tag != "latest", f"{images[0]}: pin a tag, not latest"
    assert tag.startswith(python.group(1)), f"tag {tag} is not Python {python.group(1)}"
    assert not digest or re.fullmatch(r"sha256:[0-9a-f]{64}", digest), digest


def test_cmd_names_a_lambda_handler_that_exists(
    dockerfile: Dockerfile, final_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    final = dockerfile.final
    # The base image's ENTRYPOINT is the runtime interface client, which reads
    # CMD as the handler; overriding it would break the Lambda mode.
    assert not final.all("ENTRYPOINT"), "the final stage must keep the Lambda ENTRYPOINT"
    cmds = final.all("CMD")
    assert cmds, "the final stage has no CMD"
    cmd = cmds[-1].exec_form()
    assert cmd is not None, f"CMD must be a JSON array, got {cmds[-1].args}"
    assert len(cmd) == 1, f"CMD must name one handler, got {cmd}"
    assert re.fullmatch(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)+", cmd[0]), cmd[0]
    module_name, _, function_name = cmd[0].rpartition(".")

    # Import as the image would: with its DATALAKEP_CONFIG, read from the repo.
    config = image_path_to_repo(dockerfile, final_env.get("DATALAKEP_CONFIG", ""))
    if config is not None:
        monkeypatch.setenv("DATALAKEP_CONFIG", str(config))
    # Every deployment names its allowed sources; the init refuses to start without.
    monkeypatch.setenv("DATALAKEP_ALLOWED_SOURCES", "inbox/incoming/")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        if error.name and module_name.startswith(error.name):
            pytest.fail(f"CMD names {cmd[0]}, but module {module_name} does not exist (yet)")
        raise
    handler = getattr(module, function_name, None)
    assert callable(handler), f"{module_name} has no callable {function_name}"
    # Lambda calls handler(event, context) positionally and does not await.
    try:
        inspect.signature(handler).bind(object(), object())
    except TypeError as error:
        pytest.fail(f"{cmd[0]} cannot be called as handler(event, context): {error}")
    assert not inspect.iscoroutinefunction(handler), "Lambda's Python runtime does not await"


def test_copies_exactly_the_project_sources_and_none_is_ignored(
    dockerfile: Dockerfile, ignore_rules: list[IgnoreRule], pyproject: dict[str, Any]
) -> None:
    local = [c for stage in dockerfile.stages for c in copies(stage) if c.from_stage is None]
    sources = {str(PurePosixPath(s)) for c in local for s in c.sources}
    missing, extra = sorted(EXPECTED_SOURCES - sources), sorted(sources - EXPECTED_SOURCES)
    assert not missing and not extra, f"COPY sources: missing {missing}, extra {extra}"
    # pip builds the project from these: pyproject's readme must be copied too.
    assert pyproject["project"]["readme"] in sources
    for source in sorted(sources):
        path = ROOT / source
        assert path.exists(), f"COPY {source}: not in the repository"
        assert not is_ignored(ignore_rules, source), f"COPY {source}: .dockerignore drops it"
        if path.is_dir():
            # Only caches may be dropped from inside a copied directory.
            for file in path.rglob("*"):
                relative = file.relative_to(ROOT).as_posix()
                if file.is_file() and is_ignored(ignore_rules, relative):
                    assert CACHE_PARTS & set(file.parts) or file.suffix in {".pyc", ".pyo"}, (
                        f"{relative} is copied with {source} but .dockerignore drops it"
                    )


def test_dependencies_come_from_pyproject_only(
    dockerfile: Dockerfile, pyproject: dict[str, Any]
) -> None:
    allowed = {requirement_name(d) for d in pyproject["project"]["dependencies"]}
    installs = pip_installs(dockerfile)
    assert installs, "no pip install in the Dockerfile"
    project_installs = [i for i in installs if any(is_project(r) for r in i.requirements)]
    assert project_installs, "the project itself (`pip install .`) is never installed"
    for install in installs:
        where = f"Dockerfile:{install.line}"
        assert not install.editable, f"{where}: the image needs a regular, not editable, install"
        for requirement in install.requirements:
            if is_project(requirement):
                # `.[dev]` would bring pytest, mypy, moto... into production.
                assert requirement.rstrip("/") == ".", f"{where}: no extras in the image"
            else:
                assert requirement_name(requirement) in allowed, (
                    f"{where}: {requirement} is not in pyproject's [project].dependencies"
                )
        for requirements_file in install.options.get("-r", []) + install.options.get(
            "--requirement", []
        ):
            in_repo = ROOT / requirements_file
            if in_repo.is_file():
                for line in in_repo.read_text().splitlines():
                    if line.strip() and not line.lstrip().startswith(("#", "-")):
                        assert requirement_name(line) in allowed, f"{requirements_file}: {line}"
            else:
                # Generated during the build: it must be generated from pyproject.
                assert "pyproject.toml" in install.run_text, (
                    f"{where}: {requirements_file} is not made from pyproject.toml"
                )


def test_installed_trees_land_where_lambda_and_the_worker_look(
    dockerfile: Dockerfile, final_env: dict[str, str]
) -> None:
    task_root = final_env["LAMBDA_TASK_ROOT"]
    targets = {
        t
        for install in pip_installs(dockerfile)
        for t in install.options.get("--target", []) + install.options.get("-t", [])
    }
    copied = {
        str(PurePosixPath(s))
        for c in copies(dockerfile.final)
        if c.from_stage is not None and str(PurePosixPath(expand(c.dest, final_env))) == task_root
        for s in c.sources
    }
    # An installed tree not copied into the task root would be missing at run time.
    missing = {str(PurePosixPath(t)) for t in targets} - copied
    assert not missing, f"pip --target trees never copied into {task_root}: {missing}"
    # The worker runs the console script directly, outside the Lambda bootstrap:
    # pip --target puts it in <target>/bin, and the packages need PYTHONPATH.
    assert f"{task_root}/bin" in final_env["PATH"].split(":")
    assert task_root in final_env.get("PYTHONPATH", "").split(":")


def test_no_secret_material(dockerfile: Dockerfile) -> None:
    for stage in dockerfile.stages:
        for instruction in stage.all("ENV"):
            for key, _ in env_pairs(instruction):
                assert not SECRET_NAME.search(key), f"Dockerfile:{instruction.line}: ENV {key}"
        for instruction in stage.all("ARG"):
            for name in arg_names(instruction):
                assert not SECRET_NAME.search(name), f"Dockerfile:{instruction.line}: ARG {name}"
        for copy in copies(stage):
            for source in copy.sources:
                assert not SECRET_FILE.match(PurePosixPath(source).name), (
                    f"Dockerfile:{copy.line}: copies {source}"
                )
    assert not SECRET_TEXT.search(DOCKERFILE.read_text()), "a key is written in the Dockerfile"


@pytest.mark.parametrize(
    "path",
    [".git/HEAD", ".venv/bin/python", "tests/unit/test_x.py", "data/in.xlsx", ".env"],
)
def test_dockerignore_keeps_out(ignore_rules: list[IgnoreRule], path: str) -> None:
    assert is_ignored(ignore_rules, path)


def test_documented_worker_command_is_a_real_cli_subcommand(
    dockerfile: Dockerfile, pyproject: dict[str, Any]
) -> None:
    documented = [
        match
        for comment in dockerfile.comments
        if (match := re.search(r"docker run .*--entrypoint[= ](\S+) .*<image>(.*)$", comment))
    ]
    assert documented, "the Dockerfile does not document the worker's `docker run` command"
    program, args = documented[0].group(1), shlex.split(documented[0].group(2))
    assert pyproject["project"]["scripts"].get(program) == "entrypoints.cli:main", (
        f"--entrypoint {program} is not the project's console script"
    )
    assert args[:1] == ["worker"], f"the documented command runs {args}, not the worker"
    try:
        from entrypoints.cli import _parser
    except ImportError as error:
        pytest.fail(f"entrypoints.cli has no _parser: {error}")
    parser = _parser()
    subcommands: dict[str, argparse.ArgumentParser] = {
        name: subparser
        for action in parser._actions
        if isinstance(action, argparse._SubParsersAction)
        for name, subparser in action.choices.items()
    }
    if "worker" not in subcommands:
        pytest.fail(f"`datalakep worker` does not exist (yet); subcommands: {sorted(subcommands)}")
    # The documented flags, spelled exactly (argparse would accept a prefix such
    # as --queue for --queue-url), and the whole line must parse.
    known = subcommands["worker"]._option_string_actions
    for flag in (a.partition("=")[0] for a in args[1:] if a.startswith("-")):
        assert flag in known, f"`worker {flag}` is not an option of the worker: {sorted(known)}"
    try:
        parser.parse_args(args)
    except SystemExit:
        pytest.fail(f"`{program} {shlex.join(args)}` is not a valid command line")


def test_image_environment_and_config_file(
    dockerfile: Dockerfile, final_env: dict[str, str]
) -> None:
    assert final_env.get("PYTHONDONTWRITEBYTECODE") == "1"
    image_config = final_env.get("DATALAKEP_CONFIG")
    assert image_config, "the image sets no DATALAKEP_CONFIG"
    assert image_config.startswith(final_env["LAMBDA_TASK_ROOT"] + "/"), image_config
    repo_config = image_path_to_repo(dockerfile, image_config)
    assert repo_config is not None, f"no COPY puts anything at {image_config}"
    assert repo_config == ROOT / "config" / "datalakep.yaml"
    assert repo_config.is_file(), f"{image_config} would be missing: no {repo_config}"
    assert isinstance(yaml.safe_load(repo_config.read_text()), dict)
