"""The scenario format's remediation parts: workload `history` and `remedies`."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from budo.errors import ScenarioError
from scenarios import load_scenario

HEAD = """\
name: fixable
title: t
extends: _shop
question: q
expect: {root_cause: [x]}
script: [{answer: "ROOT CAUSE: x"}]
"""


def write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "fixable.yaml"
    path.write_text(HEAD + textwrap.dedent(body))
    return path


def test_history_becomes_old_replicasets_and_remedies_are_kept(tmp_path: Path) -> None:
    scenario = load_scenario(write(tmp_path, """\
        workloads:
          - name: adservice
            revision: 3
            image: "adservice:v2-broken"
            history:
              - {revision: 1, image: "adservice:v1"}
              - {revision: 2, image: "adservice:v2"}
        remedies:
          - workload: adservice
            image: "adservice:v2"
            symptoms:
              shop/frontend: {every: 5s, lines: ["ad failed {ts}"]}
        """))
    sets = {rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"]:
            rs for rs in scenario.of_kind("ReplicaSet", "shop")
            if rs["metadata"]["name"].startswith("adservice-")}
    assert sorted(sets) == ["1", "2", "3"]
    assert sets["1"]["spec"]["replicas"] == 0 and sets["3"]["spec"]["replicas"] == 1
    assert sets["1"]["spec"]["template"]["spec"]["containers"][0]["image"] == "adservice:v1"
    assert scenario.remedies == [{"workload": "adservice", "namespace": "shop",
                                  "image": "adservice:v2", "symptoms": {
                                      "shop/frontend": {"every": "5s",
                                                        "lines": ["ad failed {ts}"]}}}]


@pytest.mark.parametrize(("body", "path", "problem"), [
    ("remedies: [{workload: adservice}]", "remedies[0]", "needs env and/or image"),
    ("remedies: [{workload: nope, image: x}]", "remedies[0].workload", "no workload 'nope'"),
    ("remedies: [{workload: adservice, image: x, colour: red}]", "remedies[0].colour",
     "unknown key"),
    ("remedies: [{workload: adservice, image: x, symptoms: {shop: {lines: [a]}}}]",
     "remedies[0].symptoms.shop", "namespace/pod-or-workload"),
    ("remedies: [{workload: adservice, image: x, symptoms: {shop/frontend: {every: soon, "
     "lines: [a]}}}]", "remedies[0].symptoms.shop/frontend.every", "duration"),
    ("workloads: [{name: adservice, history: [{image: x}]}]", "workloads[0].history[0].revision",
     "whole number"),
])
def test_malformed_remedies_and_history_name_the_place(tmp_path: Path, body: str, path: str,
                                                       problem: str) -> None:
    with pytest.raises(ScenarioError) as caught:
        load_scenario(write(tmp_path, body + "\n"))
    assert caught.value.path == path and problem in caught.value.problem
