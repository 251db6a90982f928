"""All models, importable from one place; importing this registers every table."""

from core.models.account import Account, ApiToken, AuditLog, Department, User, hash_token
from core.models.after_call import (
    Lead,
    LeadAllocationRule,
    Outbox,
    ProviderConfig,
    PushGroup,
    PushGroupMember,
    PushMessage,
    QuotaRule,
    SmsMessage,
    SmsTemplate,
)
from core.models.base import AccountOwned, Base
from core.models.call import Call, DialogueTurn
from core.models.lists import BlacklistEntry, BlacklistGroup, Tag
from core.models.notification import Notification, PostCallRule
from core.models.saved_filter import SavedFilter
from core.models.script import Script, ScriptPrompt, ScriptVersion
from core.models.task import CallTimeTemplate, Task, TaskNumber, TaskTemplate
from core.models.telephony import Line
from core.models.transfer import TransferGroup, TransferGroupMember

__all__ = [
    "Account", "AccountOwned", "ApiToken", "AuditLog", "Base", "BlacklistEntry",
    "BlacklistGroup", "Call", "CallTimeTemplate", "Department", "DialogueTurn", "Line",
    "Notification", "PostCallRule", "SavedFilter", "Script", "ScriptPrompt", "ScriptVersion", "Tag", "Task",
    "TaskNumber",
    "TaskTemplate", "TransferGroup", "TransferGroupMember", "User", "hash_token",
    # after the call (issue 10)
    "Lead", "LeadAllocationRule", "Outbox", "ProviderConfig", "PushGroup", "PushGroupMember",
    "PushMessage", "QuotaRule", "SmsMessage", "SmsTemplate",
]
