# syntax=docker/dockerfile:1
#
# datalakeP: ONE image for both AWS modes (deploy/template.yaml runs both).
#
#   Lambda (S3 / SQS events, the daily reconcile): deploy the image as built.
#   The base image's ENTRYPOINT (/lambda-entrypoint.sh, the runtime interface
#   client) imports CMD's module.function and calls it once per event.
#
#   EC2 worker (files too heavy for Lambda, handed over through SQS): the same
#   image, with the entrypoint overridden (the Lambda entrypoint would read any
#   command as a handler name), as the unprivileged user made below:
#
#     docker run --user datalakep --entrypoint datalakep <image> worker --queue-url URL
#
#   AWS credentials come from the instance profile or the Lambda execution
#   role at run time, and the warehouse password from Secrets Manager; nothing
#   secret is baked into the image.
#
# Build and push: README "Deploy". There is no Docker daemon where the tests
# run, so the image is linted (hadolint in scripts/test), not built, in CI.
#
# No HEALTHCHECK: Lambda ignores it, and the worker's liveness shows on the
# queue (a dead worker stops extending visibility, so SQS redelivers); systemd
# restarts it (Restart=always in the template's unit).
#
# Base image: Python 3.13 on Amazon Linux 2023 (glibc 2.34); the 3.11 image
# ran on Amazon Linux 2, out of support since 2026-06-30. AWS rebuilds the tag
# with patches; pin a digest (python:3.13@sha256:...) for bit-for-bit builds.
# Both stages use the same image, so the wheels chosen in the builder match the
# runtime's Python ABI and glibc.

# ---------------------------------------------------------------------------
# Builder: install the locked dependencies and the project into directories.
# ---------------------------------------------------------------------------
FROM public.ecr.aws/lambda/python:3.13 AS builder

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore
WORKDIR /build

# Dependencies first, in their own layer, so a code change does not reinstall
# them. uv.lock is the one lock file (scripts/bootstrap installs the test venv
# from it too): uv, at the version the lock pins, exports its runtime part
# (no extras) with hashes, and pip installs exactly that list: --no-deps, so
# nothing is resolved here; --require-hashes, so every wheel is the locked
# one; --only-binary, because the base image has no compilers
# (tests/unit/test_lock.py checks a wheel exists for each architecture).
COPY pyproject.toml uv.lock ./
RUN pip install --no-cache-dir "uv==$(python -c 'import tomllib; print(next(p["version"] for p in tomllib.load(open("uv.lock", "rb"))["package"] if p["name"] == "uv"))')" \
    && uv export --frozen --no-dev --no-emit-project --no-header --format requirements-txt \
        --output-file /tmp/requirements.txt \
    && pip install --no-cache-dir --no-deps --require-hashes --only-binary=:all: \
        --target /opt/deps -r /tmp/requirements.txt

# The project itself, non-editable and --no-deps (they are in /opt/deps).
# --target keeps our files apart from the base image's and puts the
# `datalakep` console script in /opt/app/bin.
COPY README.md ./
COPY domain/ domain/
COPY application/ application/
COPY infrastructure/ infrastructure/
COPY entrypoints/ entrypoints/
# config/ is also the wheel's datalakep_config package (the default config).
COPY config/ config/
RUN pip install --no-cache-dir --no-deps --target /opt/app .

# ---------------------------------------------------------------------------
# Final: the Lambda base plus the two installed trees and the config.
# ---------------------------------------------------------------------------
FROM public.ecr.aws/lambda/python:3.13

# LAMBDA_TASK_ROOT (/var/task) is where the Lambda runtime imports handlers
# from. Two layers: dependencies (large, change with uv.lock) and the project
# (small, change with every commit).
COPY --from=builder /opt/deps ${LAMBDA_TASK_ROOT}/
COPY --from=builder /opt/app ${LAMBDA_TASK_ROOT}/
COPY config/ ${LAMBDA_TASK_ROOT}/config/

# The worker parses untrusted files: it runs as this user (uid 10001, the
# USER below), never root. The
# base image has no useradd (no shadow-utils), so the entries are written
# directly. Home is /tmp, the one writable place (Lambda too); the task root
# stays owned by root and read-only to it.
RUN echo 'datalakep:x:10001:10001:datalakeP worker:/tmp:/sbin/nologin' >> /etc/passwd \
    && echo 'datalakep:x:10001:' >> /etc/group

# PATH and PYTHONPATH are for the worker, which runs the console script
# directly rather than through the Lambda bootstrap. PYTHONDONTWRITEBYTECODE:
# the task root is read-only; pip compiled the .pyc files at install time.
ENV DATALAKEP_CONFIG=${LAMBDA_TASK_ROOT}/config/datalakep.yaml \
    PATH=${LAMBDA_TASK_ROOT}/bin:${PATH} \
    PYTHONPATH=${LAMBDA_TASK_ROOT} \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1

WORKDIR ${LAMBDA_TASK_ROOT}

USER 10001:10001

# Fail the build, not the first cold start: the worker command resolves, and
# the handler module imports with every dependency (as Lambda's init would),
# as the user that runs them. The init refuses an empty allow-list, so the check
# names a placeholder source (the function's environment sets the real one).
RUN datalakep worker --help > /dev/null \
    && DATALAKEP_ALLOWED_SOURCES=build-check/incoming/ python -c 'import entrypoints.lambda_handler'

# No ENTRYPOINT here: the base image's runtime interface client must stay.
CMD ["entrypoints.lambda_handler.handler"]
