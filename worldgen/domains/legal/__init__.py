"""Civil cases: jurisdiction and claim -> limitation period -> time bar; facts -> elements ->
ruling; ruling and claim -> damages.

Real limitation periods (cited, years from the incident):
  * California Code of Civil Procedure: personal-injury negligence 2 (§335.1), written
    contract 4 (§337(a)), oral contract 2 (§339(1)), libel/slander 1 (§340(c)),
    fraud 3 (§338(d)).
  * New York CPLR: personal injury 3 (214(5)), contract, written or oral, 6 (213(2)),
    defamation 1 (215(3)), fraud 6 (213(8)).
  * Texas Civil Practice and Remedies Code: personal injury 2 (§16.003(a)), contract
    (debt), written or oral, 4 (§16.004(a)(3), §16.051), defamation 1 (§16.002(a)),
    fraud 4 (§16.004(a)(4)).
Illustrative (not legal advice): the deadline is the same calendar day N years after the
incident (29 February -> 28 February) and a filing on that day is timely (discovery rules and
tolling ignored); the elements each claim requires are a simplification of the common-law
elements; the defences allowed per claim, the success rates, the claim bounds and the award
caps are invented.
"""

from __future__ import annotations

from worldgen.domains.legal.faults import FAULTS
from worldgen.domains.legal.text import renderer
from worldgen.domains.legal.world import build

# Pinned to the stream this domain had when domains were a list, so every published dataset
# digest stays the same; a new domain leaves these out and gets one from its name.
SEED_STREAM = 1
ORDER = 1

__all__ = ["FAULTS", "ORDER", "SEED_STREAM", "build", "renderer"]
