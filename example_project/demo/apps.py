"""App configuration of the example site: starts the dashboard metrics with its first viewer."""

from django.apps import AppConfig


class DemoConfig(AppConfig):
    name = "example_project.demo"
    label = "demo"
    verbose_name = "Demo site (example)"

    def ready(self) -> None:
        from . import metrics

        metrics.connect()
