"""Settings of the ingress tests: the example project with the broadcasting URLs under ``/bc/``
and a stamping middleware first in ``MIDDLEWARE`` (see ``ingress_site``)."""

from example_project.settings import *  # noqa: F403
from example_project.settings import MIDDLEWARE

ROOT_URLCONF = "tests.integration.ingress_site"
MIDDLEWARE = ["tests.integration.ingress_site.MarkMiddleware", *MIDDLEWARE]
