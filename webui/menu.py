"""The console's left menu, mirroring the seed product. Entries whose pages are not built yet
are shown disabled (so operators see where things will be), never as empty pages."""

from __future__ import annotations

from dataclasses import dataclass, field

from flask_babel import lazy_gettext as _l

from core.enums import Role

ALL = (Role.ADMIN, Role.STAFF)


@dataclass(frozen=True)
class Item:
    label: object
    icon: str
    endpoint: str | None = None  # None: not available yet
    roles: tuple = ALL
    children: tuple = field(default=())


MENU = (
    Item(_l("Call centre"), "telephone", children=(
        Item(_l("AI outbound"), "robot", "tasks.index"),
        Item(_l("Call records"), "journal-text", "records.index"),
        Item(_l("Blacklist"), "slash-circle", "blacklist.index"),
        Item(_l("Call settings"), "sliders", "lines.index"),
        Item(_l("Script design"), "diagram-3", "scripts.index"),
        Item(_l("Statistics board"), "bar-chart"),
    )),
    Item(_l("After the call"), "send", children=(
        Item(_l("Post-call rules"), "lightning", "after_call.rules"),
        Item(_l("SMS templates"), "chat-text", "after_call.templates"),
        Item(_l("Push groups"), "wechat", "after_call.push_groups"),
        Item(_l("Lead allocation rules"), "diagram-3", "after_call.allocation"),
        Item(_l("Task quotas"), "pause-circle", "after_call.quotas"),
        Item(_l("Messages sent"), "envelope-check", "after_call.messages"),
        Item(_l("Transfer groups"), "telephone-forward", "agents.groups"),
        Item(_l("Agents"), "headset", "agents.agents"),
        Item(_l("SMS and WeCom providers"), "plug", "after_call.providers",
             roles=(Role.ADMIN,)),
    )),
    Item(_l("Agent desk"), "headset", children=(
        Item(_l("Agent workbench"), "telephone-inbound", "agents.phone", roles=(Role.AGENT,)),
    )),
    Item(_l("CRM"), "people", children=(
        Item(_l("Customer pool"), "inboxes"),
        Item(_l("My leads"), "person-lines-fill"),
    )),
    Item(_l("Team"), "diagram-2", children=(
        Item(_l("Members"), "person-badge", "team.users", roles=(Role.ADMIN,)),
    )),
    Item(_l("System settings"), "gear", children=(
        Item(_l("API tokens"), "key", "system.tokens"),
        Item(_l("Notifications"), "bell", "console.notifications"),
        Item(_l("Demo data"), "easel", "system.demo", roles=(Role.ADMIN,)),
        Item(_l("Change password"), "shield-lock", "auth.password", roles=tuple(Role)),
    )),
)


def menu_for(user) -> list[Item]:
    """The menu sections with the entries `user`'s role may open."""
    sections = []
    for section in MENU:
        children = tuple(c for c in section.children if user.role in c.roles)
        if children:
            sections.append(Item(section.label, section.icon, children=children))
    return sections
