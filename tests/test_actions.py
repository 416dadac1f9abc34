"""Actions with real Rasa SDK objects: a Tracker built from events, a real dispatcher."""

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from rasa_sdk import Tracker
from rasa_sdk.events import ActiveLoop, FollowupAction, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions import resources
from bot.web.identity import Identity, seal
from bot.settings import Settings
from actions.support_request import (  # noqa: I001
    ActionAskSeverity,
    ActionCancelRequest,
    ActionCreateTicket,
    ActionRequestHuman,
    ValidateSupportRequestForm,
)

NOW = dt.datetime(2026, 11, 28, 19, 0, tzinfo=ZoneInfo("Pacific/Honolulu"))


SECRET = "identity-secret-for-these-tests"


@pytest.fixture(autouse=True)
def fixed_resources(monkeypatch, policy):
    monkeypatch.setattr(resources, "policy", lambda: policy)
    monkeypatch.setattr(resources, "now", lambda: NOW)
    monkeypatch.setattr(resources, "settings", lambda: Settings(identity_secret=SECRET))


def tracker(text="", intent="out_of_scope", slots=None, events=None, loop=None, metadata=None):
    slots = {"requested_slot": None, **(slots or {})}
    latest = {"text": text, "intent": {"name": intent, "confidence": 0.9}, "entities": [], "metadata": metadata or {}}
    return Tracker("conv-1", slots, latest, events or [], False, None, {"name": loop} if loop else {}, "action_listen")


async def test_bad_email_is_cleared_with_a_message_saying_what_is_expected():
    dispatcher = CollectingDispatcher()
    result = await ValidateSupportRequestForm().validate_email("ana@", dispatcher, tracker("ana@"), {})
    assert result == {"email": None}
    assert "name@company.com" in dispatcher.messages[0]["text"]
    good = await ValidateSupportRequestForm().validate_email(" Ana@Example.com ", dispatcher, tracker(), {})
    assert good == {"email": "ana@example.com"}


async def test_excluded_product_answers_with_the_third_party_route():
    dispatcher = CollectingDispatcher()
    result = await ValidateSupportRequestForm().validate_product("Shopify app", dispatcher, tracker(), {})
    assert result == {"product": None}
    assert "Shopify is a third-party product" in dispatcher.messages[0]["text"]
    assert dispatcher.messages[0]["buttons"] == [{"title": "Cancel", "payload": "/cancel"}]


async def test_severity_proposal_names_the_level_and_its_deadline():
    dispatcher = CollectingDispatcher()
    slots = {"description": "Nobody can log in, production is down", "impact": "all 30 staff blocked"}
    events = await ActionAskSeverity().run(dispatcher, tracker(slots=slots), {})
    assert events == [SlotSet("proposed_severity", "critical")]
    text = dispatcher.messages[0]["text"]
    assert "I'd rate this Critical: you said " in text and "first response within 1 hour" in text
    assert "and our policy treats " in text and "you mentioned" not in text  # a reason, not a keyword
    assert "today at 20:00 (Hawaii time)" in text  # Saturday 19:00 + 1 hour, around the clock
    assert dispatcher.messages[0]["buttons"][0] == {"title": "Yes, Critical", "payload": "critical"}


async def test_request_human_prefills_from_earlier_turns_and_verified_identity():
    events = [
        {"event": "user", "text": "Makana POS 4 crashes when I close the till every evening", "timestamp": 1},
        {"event": "user", "text": "talk to a human", "timestamp": 2},
    ]
    # As the web service seals it for this conversation (bot/web/identity.py).
    who = Identity("u1", "Kai Kealoha", "kai@example.com", NOW + dt.timedelta(hours=1))
    identity = seal(SECRET, "conv-1", who)
    dispatcher = CollectingDispatcher()
    said = tracker("talk to a human", intent="request_human", events=events, metadata={"identity": identity})
    result = await ActionRequestHuman().run(dispatcher, said, {})
    assert {e["name"]: e["value"] for e in result} == {
        "product": "Makana POS",
        "version": "4",
        "description": "Makana POS 4 crashes when I close the till every evening",
        "name": "Kai Kealoha",
        "email": "kai@example.com",
        "category": "troubleshooting",
        "request_ready": False,
        "faq_outcome": None,
    }
    assert "We're closed now; we open again Monday 30 November at 9:30" in dispatcher.messages[0]["text"]


async def test_request_human_gives_the_contact_detail_asked_on_the_way(policy):
    phone = policy.doc.contact.phone
    dispatcher = CollectingDispatcher()
    asked = "I keep getting canned answers, I'm done with this bot. What number can I ring to talk to an actual person?"
    await ActionRequestHuman().run(dispatcher, tracker(asked, intent="request_human"), {})
    text = dispatcher.messages[0]["text"]
    assert phone in text and text.index(phone) < text.index("I'll pass this to our support team")
    # Asking for a person alone gets the handover, with no detail nobody asked for.
    dispatcher = CollectingDispatcher()
    await ActionRequestHuman().run(dispatcher, tracker("please get me a real person", intent="request_human"), {})
    assert phone not in dispatcher.messages[0]["text"] and "@" not in dispatcher.messages[0]["text"]


async def test_a_request_for_a_person_that_states_the_problem_gets_its_article_for_the_wait():
    """People first, then the article for the problem the message states (the sentences that
    ask for a person set aside): the person is still coming, the article is for the wait."""
    said = ("The receipt printer at our front counter stopped printing after the app update, nothing comes out. "
            "I'm done with this chat, I want to talk to an actual person.")
    dispatcher = CollectingDispatcher()
    await ActionRequestHuman().run(dispatcher, tracker(said, intent="request_human"), {})
    texts = [m.get("text") or "" for m in dispatcher.messages]
    assert texts[0].startswith("I'm sorry about the trouble. A person from our team will take this on.")
    assert texts[1].startswith("While you wait, this may help:") and "Settings → Hardware → Printers" in texts[1]
    # Nothing stated but the wait and the request: no article.
    for said in ("I've been waiting all day and nobody helps. Get me a human.", "please get me a real person"):
        dispatcher = CollectingDispatcher()
        await ActionRequestHuman().run(dispatcher, tracker(said, intent="request_human"), {})
        assert not any((m.get("text") or "").startswith("While you wait") for m in dispatcher.messages)


OUTAGE = "since this morning not a single till in any of our shops will take a card payment"


async def test_an_urgent_first_message_gets_the_commitment_and_one_button():
    from actions.answers import ActionAnswerQuestion

    dispatcher = CollectingDispatcher()
    events = await ActionAnswerQuestion().run(dispatcher, tracker(OUTAGE, "ask_question"), {})
    assert SlotSet("faq_outcome", "urgent") in events and SlotSet("urgent_description", OUTAGE) in events
    message, *alongside = dispatcher.messages
    # A fitting article may follow (here: card payments declined at the till), without buttons.
    assert len(alongside) == 1 and not alongside[0].get("buttons")
    assert SlotSet("last_faq_id", "pos_card_declined") in events
    assert "that sounds urgent" in message["text"] and "I'd rate this Critical: you said " in message["text"]
    # Saturday 19:00 is outside business hours: Critical is paged around the clock.
    assert "paged to our on-call engineer around the clock" in message["text"]
    assert message["buttons"] == [{"title": "Open a Critical ticket now", "payload": '/request_human{"urgency":"critical"}'}]


async def test_a_problem_told_before_a_time_question_gets_its_deadline_and_the_offer_of_a_ticket():
    """The triage reads the whole message as a question (its last sentence asks when we
    answer): the story before it is the report, rated High, so the deadline is High's and
    a ticket is offered, not the table of every severity's deadline (nor no time at all)."""
    from actions.answers import ActionAnswerQuestion
    from actions.urgent_routing import propose

    message = (
        "Each evening Makana POS shuts down on both registers the moment we confirm the cash count at close, "
        "so there's no Z report and nothing gets to Books. Daytime selling works. Reinstalling on one iPad "
        "did nothing. If I log a ticket now how soon should someone get back to me?"
    )
    assert not (await propose(message)).is_problem
    dispatcher = CollectingDispatcher()
    events = await ActionAnswerQuestion().run(dispatcher, tracker(message, "ask_question"), {})
    said = " ".join(m.get("text") or "" for m in dispatcher.messages)
    assert "I'd rate this High" in said and "first response within 4 hours" in said
    assert "Critical (1 hour" not in said and "within 1 hour" not in said
    assert SlotSet("faq_outcome", "urgent") in events


@pytest.mark.parametrize("message, topic", [
    ("the magento connector a consultant installed for us stopped sending orders into makana for every store, can you fix it?", "third_party"),
    ("our office wifi drops every few minutes and nobody can work, can your team sort out the network?", "exclusions_hardware"),
])
async def test_an_urgent_sounding_problem_with_what_support_does_not_cover_gets_no_urgent_ticket(message, topic):
    from actions.answers import ActionAnswerQuestion
    from actions.urgent_routing import propose

    # The triage alone would route it: it reads Critical or High.
    assert (await propose(message)).urgent
    dispatcher = CollectingDispatcher()
    events = await ActionAnswerQuestion().run(dispatcher, tracker(message, "ask_question"), {})
    said = " ".join(m.get("text") or "" for m in dispatcher.messages)
    assert "that sounds urgent" not in said and SlotSet("faq_outcome", "urgent") not in events
    assert SlotSet("last_faq_id", topic) in events and SlotSet("faq_outcome", "answered") in events


async def test_the_urgent_button_prefills_the_description_and_the_chosen_severity():
    latest = {"text": '/request_human{"urgency":"critical"}', "intent": {"name": "request_human", "confidence": 1.0},
              "entities": [{"entity": "urgency", "value": "critical"}], "metadata": {}}
    slots = {"requested_slot": None, "urgent_severity": "critical", "urgent_description": OUTAGE}
    events = [{"event": "user", "text": OUTAGE, "timestamp": 1}, {"event": "user", "text": latest["text"], "timestamp": 2}]
    track = Tracker("conv-1", slots, latest, events, False, None, {}, "action_listen")
    result = await ActionRequestHuman().run(CollectingDispatcher(), track, {})
    values = {e["name"]: e["value"] for e in result}
    assert values["description"] == OUTAGE
    assert values["severity"] == values["proposed_severity"] == "critical"
    assert values["category"] == "troubleshooting"


async def test_asking_for_a_call_without_a_ticket_explains_and_offers_one_button():
    from actions.meetings import ActionOfferSlots

    dispatcher = CollectingDispatcher()
    events = await ActionOfferSlots().run(dispatcher, tracker("can I get a google meet with an engineer", "book_call"), {})
    assert events == [SlotSet("call_requested", True)]
    [message] = dispatcher.messages
    assert message["text"].startswith("A call with our technical team is booked for a Critical or High ticket")
    assert message["buttons"] == [{"title": "Open a ticket", "payload": "/request_human"}]
    # With an outage in the same message, the urgency comes first and the button names it.
    dispatcher = CollectingDispatcher()
    await ActionOfferSlots().run(dispatcher, tracker(OUTAGE + ", get me a call with your engineers", "book_call"), {})
    [message] = dispatcher.messages
    assert "that sounds urgent" in message["text"] and "booked for a Critical or High ticket" in message["text"]
    assert [b["title"] for b in message["buttons"]] == ["Open a Critical ticket now"]
    # In the middle of the request: no button, the form goes on.
    dispatcher = CollectingDispatcher()
    await ActionOfferSlots().run(dispatcher, tracker("a call please", "book_call", loop="support_request_form"), {})
    assert "finish your request first" in dispatcher.messages[0]["text"] and not dispatcher.messages[0]["buttons"]


async def test_a_call_to_learn_how_something_works_gets_the_training_not_the_ticket_form(policy):
    """No problem described (a walk-through, a question), or a Low one: a ticket would lead to
    no call, so the reply says where a walk-through is. A problem still gets the ticket first."""
    from actions.meetings import ActionOfferSlots

    learning = "can I book a google meet with one of your engineers? nothing is broken, I'd just like someone to show me how quote templates work"
    dispatcher = CollectingDispatcher()
    await ActionOfferSlots().run(dispatcher, tracker(learning, "book_call"), {})
    [message] = dispatcher.messages
    assert message["text"].startswith("A call with our technical team is booked for a Critical or High ticket")
    assert all(t.url in message["text"] for t in policy.doc.training) and "let's open yours first" not in message["text"]
    assert message["buttons"] == [{"title": "Open a ticket", "payload": "/request_human"}]
    # A problem, not urgent: the ticket comes first, as before.
    problem = "the sync agent on one of our PCs keeps failing since Monday, can I get a google meet with an engineer?"
    dispatcher = CollectingDispatcher()
    await ActionOfferSlots().run(dispatcher, tracker(problem, "book_call"), {})
    assert "let's open yours first" in dispatcher.messages[0]["text"] or "that sounds urgent" in dispatcher.messages[0]["text"]
    assert "learn.makana.example" not in dispatcher.messages[0]["text"]


async def test_the_category_decides_the_fields_the_form_asks(policy):
    form = ValidateSupportRequestForm()
    ask = lambda slots: form.required_slots([], CollectingDispatcher(), tracker(slots=slots), {})  # noqa: E731
    assert await ask({}) == ["name", "email", "product", "version", "description", "tried", "impact", "severity"]
    assert await ask({"category": "customer_service", "description": "charged twice"}) == [
        "name", "email", "description", "tried", "impact", "severity"]
    assert await ask({"category": "troubleshooting", "description": "x"}) == [
        "name", "email", "product", "version", "description", "tried", "impact", "severity"]
    result = await form.validate_description(
        "you billed our card twice for the November subscription", CollectingDispatcher(), tracker(), {})
    assert result["category"] == "customer_service"


async def test_submit_revalidates_answers_stored_while_the_action_server_was_down():
    slots = {
        "name": "Chris", "email": "chris@example.com", "product": "Makana POS", "version": "2",
        "description": "The till app freezes on every iPad", "tried": "restart", "impact": "two stores",
        "severity": "high",
    }
    dispatcher = CollectingDispatcher()
    events = await ActionCreateTicket().run(dispatcher, tracker("yes", "affirm", slots=slots), {})
    assert events == [SlotSet("version", None), SlotSet("request_ready", False), FollowupAction("support_request_form")]
    assert "no longer supported" in dispatcher.messages[0]["text"]


async def test_cancel_inside_the_form_and_a_misheard_cancel():
    dispatcher = CollectingDispatcher()
    form = {"requested_slot": "impact"}
    events = await ActionCancelRequest().run(
        dispatcher, tracker("never mind", "cancel", slots=form, loop="support_request_form"), {}
    )
    assert events[:3] == [ActiveLoop(None), SlotSet("requested_slot", None), SlotSet("request_ready", False)]
    assert "cancelled" in dispatcher.messages[0]["text"]
    dispatcher = CollectingDispatcher()
    events = await ActionCancelRequest().run(
        dispatcher, tracker("Two stores cannot close", "cancel", slots=form, loop="support_request_form"), {}
    )
    assert events == [SlotSet("impact", "Two stores cannot close"), FollowupAction("support_request_form")]
    assert dispatcher.messages == []


async def test_identity_metadata_without_a_valid_seal_is_ignored():
    events = [{"event": "user", "text": "talk to a human", "timestamp": 2}]
    forged = {"user_id": "u1", "name": "Kai Kealoha", "email": "kai@example.com"}
    copied = seal(SECRET, "another-conversation", Identity("u1", "Kai Kealoha", "kai@example.com", NOW + dt.timedelta(hours=1)))
    for metadata in (forged, copied):
        result = await ActionRequestHuman().run(CollectingDispatcher(), tracker(events=events, metadata={"identity": metadata}), {})
        assert "email" not in {e["name"] for e in result}


async def test_a_message_in_spanish_gets_the_short_reply_in_spanish():
    from actions.answers import ActionAnswerQuestion

    dispatcher = CollectingDispatcher()
    events = await ActionAnswerQuestion().run(dispatcher, tracker("¿Cómo puedo cambiar el logotipo de mis facturas?", "nlu_fallback"), {})
    assert SlotSet("faq_outcome", "other_language") in events and SlotSet("language", "es") in events
    [message] = dispatcher.messages
    assert message["text"].startswith("Lo siento, por ahora este asistente solo responde en inglés.")
    assert "support@makana.example" in message["text"]
    assert message["buttons"] == [{"title": "Hablar con una persona", "payload": "/request_human"}]


async def test_a_message_in_japanese_gets_the_short_reply_in_japanese_and_our_name_is_no_tagalog():
    from actions.answers import ActionAnswerQuestion

    dispatcher = CollectingDispatcher()
    text = "屋台で使うAndroidタブレットにPOSアプリを入れたいです。メモリはどのくらい必要ですか？"
    events = await ActionAnswerQuestion().run(dispatcher, tracker(text, "nlu_fallback"), {})
    assert SlotSet("language", "ja") in events
    [message] = dispatcher.messages
    assert "英語" in message["text"] and "support@makana.example" in message["text"]
    assert message["buttons"] == [{"title": "担当者と話す", "payload": "/request_human"}]
    # A short English question that names us ("makana" read as Tagalog before stop 51).
    assert await resources.foreign_language("is makana POS 3 still suported") is None
    # Hawaiian words in English read as Tagalog, which needs more confidence.
    assert await resources.foreign_language("Maika'i, mahalo for da help") is None
    # Written in Hawaiian, which no reply is in: the English answers, not Tagalog or Dutch.
    assert await resources.foreign_language("Aloha mai kākou, pehea ʻoe? Makemake au e kōkua me kaʻu mau pila.") is None
    assert await resources.foreign_language("Saan ko po makikita ang mga invoice namin noong nakaraang buwan?") == "tl"


async def test_a_frustrated_customer_gets_the_apology_and_a_person_first_then_the_answer():
    from actions.answers import PEOPLE_FIRST, ActionAnswerQuestion

    dispatcher = CollectingDispatcher()
    text = "I've asked three times now and I'm fed up. How do I put my logo on my invoices?"
    events = await ActionAnswerQuestion().run(dispatcher, tracker(text, "ask_question"), {})
    first, answer = dispatcher.messages
    assert first["text"] == PEOPLE_FIRST and first["buttons"] == [{"title": "Talk to a person", "payload": "/request_human"}]
    assert "Templates" in answer["text"] and answer["text"].endswith("Did this answer your question?")
    assert SlotSet("faq_outcome", "answered") in events


async def test_an_upset_customer_with_an_unsure_question_gets_the_apology_then_the_suggestions(monkeypatch):
    from actions.answers import PEOPLE_FIRST, ActionAnswerQuestion
    from bot.faq import SUGGEST_TEXT, FaqResult

    answerer = await resources.answerer()
    unsure = FaqResult("suggest", SUGGEST_TEXT, suggestions=[("api_pagination_filters", "API pagination")], score=0.33)
    monkeypatch.setattr(answerer, "answer_all", lambda message, now, severity=None: [unsure])
    dispatcher = CollectingDispatcher()
    text = "Third time asking and I'm fed up. Our script only ever gets 100 contacts back from the API, what am I missing?"
    events = await ActionAnswerQuestion().run(dispatcher, tracker(text, "ask_question"), {})
    first, suggestion = dispatcher.messages
    assert first["text"] == PEOPLE_FIRST
    assert suggestion["text"] == SUGGEST_TEXT
    assert suggestion["buttons"][0] == {"title": "API pagination", "payload": '/ask_question{"faq_id":"api_pagination_filters"}'}
    assert SlotSet("faq_outcome", "suggested") in events


async def test_two_questions_two_answers_and_one_did_this_help():
    from actions.answers import ActionAnswerQuestion

    dispatcher = CollectingDispatcher()
    text = "How do I reset my password? And is Makana POS 2 still supported?"
    await ActionAnswerQuestion().run(dispatcher, tracker(text, "ask_question"), {})
    article, fact = dispatcher.messages
    assert "Forgot password" in article["text"] and [b["payload"] for b in article["buttons"]] == ["/affirm", "/deny"]
    assert fact["text"].startswith("No, Makana POS 2 is no longer supported.")
    assert fact["buttons"] == [{"title": "More details", "payload": '/ask_question{"faq_id":"products"}'}]


async def test_another_companys_product_is_declined_with_a_person_offered():
    from actions.answers import ActionAnswerQuestion
    from bot.faq import DECLINE_TEXT

    dispatcher = CollectingDispatcher()
    events = await ActionAnswerQuestion().run(dispatcher, tracker("how do I cancel my Netflix subscription", "ask_question"), {})
    [message] = dispatcher.messages
    assert message["text"] == DECLINE_TEXT and SlotSet("faq_outcome", "declined") in events


async def test_request_human_offers_a_live_chat_only_when_a_person_is_there(monkeypatch, store):
    """Fixed clocks: in hours with an agent online the offer comes first; closed, nobody
    online, or declined (the web service's metadata), only the ticket form."""
    from bot.live_store import LiveStore

    monday = dt.datetime(2026, 11, 30, 15, 0, tzinfo=ZoneInfo("Pacific/Honolulu"))

    async def the_store():
        return store

    monkeypatch.setattr(resources, "store", the_store)

    async def offered(at: dt.datetime, metadata: dict | None = None) -> bool:
        monkeypatch.setattr(resources, "now", lambda: at)
        dispatcher = CollectingDispatcher()
        await ActionRequestHuman().run(dispatcher, tracker("/request_human", "request_human", metadata=metadata), {})
        assert "I'll pass this to our support team" in dispatcher.messages[0]["text"]  # the ticket path goes on
        return any((m.get("custom") or {}).get("live_offer") for m in dispatcher.messages)

    assert not await offered(monday)  # nobody online
    await LiveStore(store.engine).set_presence("alice", "online", monday)
    assert await offered(monday)
    assert not await offered(monday, {"live_declined": True})
    await LiveStore(store.engine).set_presence("alice", "online", NOW)
    assert not await offered(NOW)  # Saturday 19:00: closed


async def test_a_mistyped_ticket_number_is_named_and_the_shape_explained(monkeypatch):
    """"what's the status of MK-ABC123" has no valid number: the status journey says what
    one looks like (the route check leaves a message with a ticket reference to Rasa)."""
    from actions.ticket_status import ActionTicketStatus

    async def no_route_check(route, message):  # would be asked only without a reference
        raise AssertionError("the route check was asked")

    monkeypatch.setattr(resources, "route_confirmed", no_route_check)
    dispatcher = CollectingDispatcher()
    assert await ActionTicketStatus().run(dispatcher, tracker("what's the status of MK-ABC123", "check_ticket_status"), {}) == []
    [message] = dispatcher.messages
    assert message["text"].startswith("MK-ABC123 isn't one of our ticket numbers") and "MK-7Q4K2F" in message["text"]
    dispatcher = CollectingDispatcher()
    await ActionTicketStatus().run(dispatcher, tracker("/check_ticket_status", "check_ticket_status"), {})
    assert dispatcher.messages[0]["text"] == "Which ticket? Please give me its number, like MK-7Q4K2F."


async def test_an_upset_customer_asking_after_a_ticket_gets_the_apology_before_which_ticket(monkeypatch):
    from actions.ticket_status import ActionTicketStatus

    async def confirmed(route, message):
        return True

    monkeypatch.setattr(resources, "route_confirmed", confirmed)
    dispatcher = CollectingDispatcher()
    upset = "I sent in a ticket last week and still nothing back from you. Does anybody there actually read these?? So fed up."
    await ActionTicketStatus().run(dispatcher, tracker(upset, "check_ticket_status"), {})
    first, second = dispatcher.messages
    assert first["text"].startswith("I'm sorry") and first["buttons"][0]["payload"] == "/request_human"
    assert second["text"].startswith("Which ticket?")
    dispatcher = CollectingDispatcher()
    await ActionTicketStatus().run(dispatcher, tracker("any news on my ticket?", "check_ticket_status"), {})
    assert [m["text"] for m in dispatcher.messages] == ["Which ticket? Please give me its number, like MK-7Q4K2F."]


async def test_other_times_before_any_offer_is_answered_as_a_question(monkeypatch):
    """Rasa hears "wow. another useless answer" as other_times; with no call times offered
    in the conversation it is answered (and gets people first there), not the call journey."""
    import actions.meetings as meetings

    answered = []

    async def answer_instead(dispatcher, tracker, domain):
        answered.append(tracker.latest_message["text"])
        return []

    monkeypatch.setattr(meetings, "answer_instead", answer_instead)

    async def confirmed(tracker):
        return False

    monkeypatch.setattr(resources, "misrouted", confirmed)
    dispatcher = CollectingDispatcher()
    await meetings.ActionOfferSlots().run(dispatcher, tracker("wow. another useless answer", "other_times"), {})
    assert answered == ["wow. another useless answer"] and not dispatcher.messages
    # Times offered earlier in the conversation, or the button: the journey goes on.
    offered = [{"event": "action", "name": "action_offer_slots"}]
    for case in (tracker("none of these work", "other_times", events=offered), tracker("/other_times", "other_times")):
        assert not meetings.asks_other_times_unoffered(case)
    assert meetings.asks_other_times_unoffered(tracker("none of these work", "other_times"))


def test_an_error_code_is_no_mistyped_ticket_number():
    """"MK-S409 keeps showing up" quotes an error the knowledge base documents: the status
    journey must not answer that MK-S409 isn't one of our ticket numbers, and the route
    check still reads the message. A mistyped ticket number stays one."""
    assert resources.ticket_reference("MK-S409 keeps showing up") is None
    assert resources.ticket_reference("opening the company gives MK-D210") is None
    assert resources.ticket_reference("status of MK-ABC1 please").group(0) == "MK-ABC1"
    assert resources.ticket_reference("MK-S409 again, see MK-7Q4K2F").group(0) == "MK-7Q4K2F"


def test_a_sure_article_comes_without_the_urgent_ticket_when_the_triage_is_not_sure():
    from actions.urgent_routing import fix_at_hand
    from bot.faq import FaqResult
    from bot.triage import Proposal

    def proposal(critical, high):
        rest = (1.0 - critical - high) / 2
        probabilities = {"critical": critical, "high": high, "medium": rest, "low": rest}
        return Proposal("critical", "troubleshooting", True, probabilities, 0.95)

    article = [FaqResult("answer", "Wait 15 minutes or reset your password.", "error_account_locked", 0.97)]
    policy_fact = [FaqResult("answer", "Critical: first response within 1 hour.", "response_times", 0.97)]
    topic = {"response_times": "response_times"}.get
    assert fix_at_hand(proposal(0.48, 0.18), article, topic)
    # Sure it is urgent: the ticket is offered, article or not.
    assert not fix_at_hand(proposal(0.7, 0.2), article, topic)
    # An article the knowledge base is unsure of, or a policy answer, is no fix at hand.
    unsure = [FaqResult("answer", "Wait 15 minutes.", "error_account_locked", 0.7)]
    assert not fix_at_hand(proposal(0.48, 0.18), unsure, topic)
    assert not fix_at_hand(proposal(0.48, 0.18), policy_fact, topic)


async def test_a_sure_article_never_holds_back_a_critical_breach_or_data_loss(monkeypatch):
    """fix_at_hand is for a product that is down for the customer (a locked account): an
    article can settle that. A report that is Critical for data sent to the wrong people,
    data lost or payments failing keeps its urgent offer whatever article fits."""
    from actions.urgent_routing import article_fixes
    from bot.faq import FaqResult
    from bot.triage import Proposal

    class Triage:
        def __init__(self, down):
            self.down, self.asked = down, []

        def down_for_all(self, text):
            self.asked.append(text)
            return self.down

    probabilities = {"critical": 0.55, "high": 0.15, "medium": 0.2, "low": 0.1}
    critical = Proposal("critical", "troubleshooting", True, probabilities, 0.95)
    high = Proposal("high", "troubleshooting", True, probabilities, 0.95)
    article = [FaqResult("answer", "Open the invoice and look at Activity.", "invoice_email_not_delivered", 0.93)]
    topic = {}.get
    for down, fixes in ((True, True), (False, False)):
        triage = Triage(down)

        async def model(triage=triage):
            return triage

        monkeypatch.setattr(resources, "triage", model)
        assert await article_fixes("our invoices go to the wrong customers", critical, article, topic) is fixes
        assert triage.asked == ["our invoices go to the wrong customers"]
        # High has one kind of criterion an article can meet; the triage is not asked.
        assert await article_fixes("one report fails for the whole team", high, article, topic)
        assert len(triage.asked) == 1
    # No sure article: nothing to hold back, whatever the criterion.
    assert not await article_fixes("x", critical, [FaqResult("answer", "Activity.", "invoice_email_not_delivered", 0.7)], topic)


@pytest.mark.parametrize("report, down", [
    ("Nobody in our company can sign in to Makana Books since this morning, every login fails.", True),
    ("Customers are getting statements that list another company's invoices and bank details.", False),
    ("Half of last month's bank transactions have vanished from our books overnight.", False),
])
async def test_the_triage_names_the_critical_criterion_an_article_cannot_settle(report, down):
    """The Critical criterion of a report (TriageModel.down_for_all), in wording of these tests."""
    model = await resources.triage()
    assert model.down_for_all(report) is down

