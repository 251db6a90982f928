"""The script interpreter: a pure state machine over a parsed `Flow`.

    engine = ScriptEngine(flow, variables)
    cmds = engine.start()                 # [Say…, Listen] or [Say…, Hangup]
    cmds = engine.on_utterance("可以")    # the callee said something (final ASR text)
    cmds = engine.on_no_input()           # the listen timed out without speech

Commands out: `Say` (prompt text/audio, interruptible), `Listen`, `Hangup`, `Transfer`,
`SendSms`. Tags, scores, intents and visited nodes stay in `engine.state` for grading. No
I/O and no clock: the runtime carries the commands out and times the waits.

Matching order for an utterance: the node's branches (by intent priority and span), then the
global knowledge Q&A (answer, then repeat the node / listen / go to a node), then the node's
`default`, then the no-match re-prompt; after `max` re-prompts the retry's `goto` (or hang-up).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from core.dialogue import intents as im
from core.dialogue.schema import Flow, Node, Prompt, Retry


@dataclass(frozen=True)
class Say:
    text: str
    audio: str | None
    interruptible: bool
    node: str
    kind: str = "prompt"  # prompt | knowledge | no_input | no_match | closing


@dataclass(frozen=True)
class Listen:
    node: str


@dataclass(frozen=True)
class Hangup:
    cause: str = "NORMAL_CLEARING"
    reason: str = "script"


@dataclass(frozen=True)
class Transfer:
    target: object
    # What asked for it (core.transfer.Trigger): a script node, or the runtime's grade rule.
    trigger: str = "script"


@dataclass(frozen=True)
class SendSms:
    template_id: object


Command = Say | Listen | Hangup | Transfer | SendSms


@dataclass
class EngineState:
    node: str
    no_input_count: int = 0
    no_match_count: int = 0
    tags: list[str] = field(default_factory=list)
    score: int = 0
    intents: list[str] = field(default_factory=list)  # every intent heard, in order
    nodes: list[str] = field(default_factory=list)  # nodes entered, in order
    knowledge: list[str] = field(default_factory=list)
    unrecognised: int = 0
    interactions: int = 0  # callee utterances handled
    sms: list = field(default_factory=list)
    ended: bool = False
    assistant: bool = False  # a call-screening assistant answered (grade F)


class ScriptEngine:
    """One call's position in one script."""

    def __init__(self, flow: Flow, variables: dict | None = None):
        self.flow = flow
        self.variables = dict(variables or {})
        self.state = EngineState(node=flow.start)

    # --- events ----------------------------------------------------------------------
    def start(self) -> list[Command]:
        return self._enter(self.flow.start)

    def on_utterance(self, text: str) -> list[Command]:
        """The callee finished an utterance whose final text is `text` (may be empty)."""
        st = self.state
        if st.ended:
            return []
        node = self.flow.nodes[st.node]
        st.interactions += 1
        st.no_input_count = 0
        heard = im.match_all(text, self.flow.intents.values())
        st.intents.extend(heard)
        if "assistant" in heard:
            st.assistant = True

        branch = self._branch(node, text)
        if branch is not None:
            st.no_match_count = 0
            return self._enter(branch)
        for item in self._knowledge(text):
            st.no_match_count = 0
            st.knowledge.append(item.name)
            say = self._say(item.answer, node.name, interruptible=True, kind="knowledge")
            if item.then == "listen":
                return [*say, Listen(node.name)]
            if item.then == "repeat":
                return [*say, *self._say(node.prompt, node.name, node.interruptible),
                        *self._after_prompt(node)]
            return [*say, *self._enter(item.then)]
        if node.default and im.normalise(text):
            st.no_match_count = 0
            return self._enter(node.default)
        st.unrecognised += 1
        return self._retry(node, node.no_match or self.flow.no_match, "no_match")

    def on_no_input(self) -> list[Command]:
        """The callee said nothing before the no-input timeout."""
        st = self.state
        if st.ended:
            return []
        node = self.flow.nodes[st.node]
        return self._retry(node, node.no_input or self.flow.no_input, "no_input")

    # --- internals ---------------------------------------------------------------------
    def _branch(self, node: Node, text: str) -> str | None:
        candidates = []
        for order, branch in enumerate(node.branches):
            for name in branch.intents:
                if name == "*":
                    if im.normalise(text):
                        candidates.append((-1, 0, -order, branch.goto))
                    continue
                intent = self.flow.intents.get(name)
                span = intent.span(im.normalise(text), text) if intent else 0
                if span:
                    candidates.append((intent.priority, span, -order, branch.goto))
        return max(candidates)[3] if candidates else None

    def _knowledge(self, text: str):
        found = im.match(text, [k.intent for k in self.flow.knowledge])
        if found is None:
            return []
        return [k for k in self.flow.knowledge if k.intent.name == found.intent][:1]

    def _retry(self, node: Node, retry: Retry, kind: str) -> list[Command]:
        st = self.state
        count = st.no_input_count if kind == "no_input" else st.no_match_count
        if count < retry.max:
            if kind == "no_input":
                st.no_input_count += 1
            else:
                st.no_match_count += 1
            return [*self._say(retry.prompt, node.name, True, kind), Listen(node.name)]
        st.no_input_count = st.no_match_count = 0
        if retry.goto:
            return self._enter(retry.goto)
        st.ended = True
        return [Hangup(reason=kind)]

    def _say(self, prompt: Prompt, node: str, interruptible: bool, kind: str = "prompt"):
        if not (prompt.text or prompt.audio):
            return []
        return [Say(prompt.render(self.variables), prompt.audio, interruptible, node, kind)]

    def _enter(self, name: str) -> list[Command]:
        st = self.state
        cmds: list[Command] = []
        for _hop in range(len(self.flow.nodes) + 1):  # `next` chains, never a loop forever
            node = self.flow.nodes[name]
            st.node = name
            st.nodes.append(name)
            for action in node.actions:
                if action.type == "tag" and action.value not in st.tags:
                    st.tags.append(action.value)
                elif action.type == "score":
                    st.score += int(action.value)
                elif action.type == "sms":
                    st.sms.append(action.value)
                    cmds.append(SendSms(action.value))
            terminal = node.terminal
            cmds.extend(self._say(node.prompt, name, node.interruptible and terminal is None,
                                  "closing" if terminal else "prompt"))
            if node.next and terminal is None:
                name = node.next
                continue
            return cmds + self._after_prompt(node)
        st.ended = True
        return cmds + [Hangup(reason="loop")]

    def _after_prompt(self, node: Node) -> list[Command]:
        terminal = node.terminal
        if terminal is None:
            return [Listen(node.name)]
        self.state.ended = True
        if terminal.type == "transfer":
            return [Transfer(terminal.value)]
        return [Hangup()]
