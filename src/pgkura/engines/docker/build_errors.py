"""Why an image build failed, in terms of the setting that fixes it.

Compose prints BuildKit's account of a build; the step that failed is named on its last
`failed to solve` line (the command BuildKit ran). The base image is decided on the engine's
own answer (is it here?), the failing step on which command of our Dockerfile it was.
"""

from __future__ import annotations

from pgkura.config.settings import Settings
from pgkura.engines.docker.compose import image_exists


def _network_remedy(settings: Settings) -> str:
    if settings.build_network == "host":
        return "use a proxy or package mirror that this machine's network reaches"
    return (
        "set PGKURA_BUILD_NETWORK=host where Docker's default bridge network has no route out "
        "(the build steps then use the host's network)"
    )


def failing_step(output: str) -> str:
    """The command of the step that failed: BuildKit's last `failed to solve` line."""
    lines = [line for line in output.splitlines() if "failed to solve" in line]
    return lines[-1] if lines else ""


def explain(settings: Settings, output: str) -> str | None:
    """What failed and what to set, or None when no build failed or for none of the known
    causes."""
    step = failing_step(output)
    if not step:
        return None
    if not image_exists(settings.base_image):
        return (
            f"The base image {settings.base_image} (PG_BASE_IMAGE) is not on this machine and "
            f"could not be pulled for the {settings.build_target!r} target "
            "(PGKURA_BUILD_TARGET).\n→ `docker pull` it where a registry is reachable (or "
            "`docker load` it), or set PG_BASE_IMAGE to an image this machine has"
        )
    network = settings.build_network or "Docker's default"
    if "PG_BIGM_SOURCE" in step:  # the Dockerfile's step that fetches and checks pg_bigm
        source = settings.pg_bigm.describe()
        if "computed checksum did NOT match" in output:
            return (
                f"pg_bigm's archive from {source} (PG_BIGM_SOURCE) does not have the SHA-256 "
                f"given in PG_BIGM_SHA256 ({settings.pg_bigm.sha256}): a different or damaged "
                "archive.\n→ check the URL, or correct PG_BIGM_SHA256"
            )
        return (
            f"pg_bigm's source {source} (PG_BIGM_SOURCE) could not be downloaded by the build "
            f"(build network: {network}, PGKURA_BUILD_NETWORK).\n→ download the archive where "
            "the network allows and set PG_BIGM_SOURCE to its path (and PG_BIGM_SHA256); or "
            f"{_network_remedy(settings)}; or build without pg_bigm: PGKURA_BUILD_TARGET=runtime"
        )
    if "apt-get" in step:
        return (
            f"A build step could not install packages: apt-get found no route to the base "
            f"image's package sources from the build network ({network}, "
            f"PGKURA_BUILD_NETWORK).\n→ {_network_remedy(settings)}"
        )
    return None
