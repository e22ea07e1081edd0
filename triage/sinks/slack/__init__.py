"""The Slack sink: Block Kit messages, posted once per window and target."""

from triage.sinks.slack.deliver import deliver
from triage.sinks.slack.doctor import check

__all__ = ["check", "deliver"]
