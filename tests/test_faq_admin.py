"""Adding an FAQ entry is one command: validated, appended, index rebuilt and searchable."""

import shutil

import pytest
import yaml

from bot.faq_admin import ADDED_FILE, add_entry
from bot.settings import ROOT
from kb_index import FaqIndex, IndexSettings
from kb_index.knowledge import KnowledgeError

FAST = IndexSettings(adapt=None)  # no encoder fine-tuning: keeps this test quick


@pytest.fixture
def kb(tmp_path):
    folder = tmp_path / "faq"
    folder.mkdir()
    shutil.copy(ROOT / "data" / "faq" / "billing.yml", folder / "billing.yml")
    return folder


def test_add_entry_rebuilds_the_index_and_answers_it(kb, tmp_path, policy):
    count = add_entry(
        kb, tmp_path / "index", policy, "pay_in_crypto", "Paying in cryptocurrency",
        ["can I pay in bitcoin", "do you accept crypto payments", "is ethereum accepted for my subscription"],
        "We don't accept cryptocurrencies; see {{ url.help_centre }}/payment-methods.", index_settings=FAST,
    )
    added = yaml.safe_load((kb / ADDED_FILE).read_text())
    assert [e["id"] for e in added] == ["pay_in_crypto"]
    index = FaqIndex.load(tmp_path / "index")
    assert len(index) == count
    assert index.search("could I settle my bill with bitcoin?").candidates[0].entry_id == "pay_in_crypto"


def test_bad_entries_are_refused_and_nothing_is_written(kb, tmp_path, policy):
    with pytest.raises(KnowledgeError, match="already exists"):
        add_entry(kb, tmp_path / "i", policy, "refund_policy", "Dup", ["a question here"], "x", index_settings=FAST)
    with pytest.raises(KeyError, match="contact.fax"):
        add_entry(kb, tmp_path / "i", policy, "fax", "Fax", ["what is your fax"], "Fax {{ contact.fax }}", index_settings=FAST)
    with pytest.raises(KnowledgeError):
        add_entry(kb, tmp_path / "i", policy, "empty", "Empty", [], "answer", index_settings=FAST)
    assert not (kb / ADDED_FILE).exists()
    assert not (tmp_path / "i").exists()
