# syntax=docker/dockerfile:1
#
# datalakeP: ONE image for both AWS modes.
#
#   Lambda (S3 / SQS events): deploy the image as built. The base image's
#   ENTRYPOINT (/lambda-entrypoint.sh, the runtime interface client) imports
#   CMD's module.function and calls it once per event.
#
#   EC2 worker (files too heavy for Lambda, handed over through SQS): the same
#   image, with the entrypoint overridden, because the Lambda entrypoint would
#   read any command as a handler name:
#
#     docker run --entrypoint datalakep <image> worker --queue-url URL
#
#   AWS credentials come from the instance profile or the Lambda execution
#   role at run time, and the warehouse password from Secrets Manager (see
#   config/datalakep.yaml); nothing secret is baked into the image. Pass the
#   region and any overrides as environment variables (docker run -e
#   AWS_REGION=... -e DATALAKEP_WAREHOUSE=...).
#
# Build:             docker build -t datalakep .
# Try the Lambda locally (the base image bundles the Runtime Interface Emulator):
#   docker run -p 9000:8080 datalakep
#   curl -d @s3-event.json http://localhost:9000/2015-03-31/functions/function/invocations
#
# No HEALTHCHECK: Lambda ignores it (the platform supervises the function),
# and the worker's liveness is visible on the queue: a dead worker stops
# extending message visibility, so SQS redelivers to another. Supervise the
# worker with a restart policy (docker --restart, systemd or ECS) instead.
#
# Base image: the tag pins Python 3.11 (the project's requires-python) on the
# Lambda runtime. AWS rebuilds this tag with OS and runtime patches, so builds
# are not bit-for-bit reproducible; the production practice is a digest pin
# (public.ecr.aws/lambda/python:3.11@sha256:...) bumped by Renovate or
# Dependabot. Both stages must use the same image so that the wheels chosen in
# the builder match the runtime's Python ABI and glibc (Amazon Linux 2, 2.26).

# ---------------------------------------------------------------------------
# Builder: resolve and install everything into plain directories.
# ---------------------------------------------------------------------------
FROM public.ecr.aws/lambda/python:3.11 AS builder

ENV PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /build

# Third-party dependencies first, in their own layer, so a code change does
# not reinstall ~500 MB of packages. The list is read from pyproject's
# [project].dependencies (never the [dev] extra), so pyproject stays the only
# place dependencies are named. --only-binary: the base image has no
# compilers, so a dependency without a compatible wheel must fail here,
# loudly, rather than halfway through an sdist build.
COPY pyproject.toml ./
RUN python -c 'import tomllib; deps = tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]; print("\n".join(deps))' \
        > /tmp/requirements-from-pyproject.txt \
    && pip install --no-cache-dir --only-binary=:all: \
        --target /opt/deps -r /tmp/requirements-from-pyproject.txt

# The project itself, non-editable. --no-deps: its dependencies are already
# in /opt/deps, resolved from the same pyproject. --target (rather than the
# interpreter's site-packages) keeps our files apart from the base image's,
# and puts the `datalakep` console script in /opt/app/bin.
COPY README.md ./
COPY domain/ domain/
COPY application/ application/
COPY infrastructure/ infrastructure/
COPY entrypoints/ entrypoints/
# config/ is also the wheel's datalakep_config package (the default config).
COPY config/ config/
RUN pip install --no-cache-dir --no-deps --target /opt/app .

# ---------------------------------------------------------------------------
# Final: the Lambda base plus the two installed trees and the config. No
# sources, no pip build leftovers.
# ---------------------------------------------------------------------------
FROM public.ecr.aws/lambda/python:3.11

# LAMBDA_TASK_ROOT (/var/task) is where the Lambda runtime imports handlers
# from, and it comes first on the function's sys.path. Two COPYs, two layers:
# dependencies (large, change with pyproject) and the project (small, change
# with every commit), so a code change pushes and pulls only the small one.
COPY --from=builder /opt/deps ${LAMBDA_TASK_ROOT}/
COPY --from=builder /opt/app ${LAMBDA_TASK_ROOT}/
COPY config/ ${LAMBDA_TASK_ROOT}/config/

# PATH and PYTHONPATH are for the worker, which runs the console script
# directly rather than through the Lambda bootstrap (which adds the task root
# to sys.path itself). A set PYTHONPATH makes that bootstrap skip the
# /opt/python layer paths, which container images cannot use anyway.
# PYTHONDONTWRITEBYTECODE: the task root is read-only on Lambda; pip already
# compiled the .pyc files at install time.
ENV DATALAKEP_CONFIG=${LAMBDA_TASK_ROOT}/config/datalakep.yaml \
    PATH=${LAMBDA_TASK_ROOT}/bin:${PATH} \
    PYTHONPATH=${LAMBDA_TASK_ROOT} \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1

WORKDIR ${LAMBDA_TASK_ROOT}

# Fail the build, not the first cold start: the worker command resolves, and
# the handler module imports with every dependency (as Lambda's init would).
RUN datalakep worker --help > /dev/null \
    && python -c 'import entrypoints.lambda_handler'

# No ENTRYPOINT here: the base image's runtime interface client must stay.
CMD ["entrypoints.lambda_handler.handler"]
