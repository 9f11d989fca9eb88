"""Medical encounters: demographics and risk factors -> diagnosis -> labs -> treatment.

Real relations (cited):
  * ADAG: estimated average glucose (mg/dL) = 28.7 * HbA1c(%) - 46.7
    (Nathan et al., Diabetes Care 2008;31:1473-8).
  * eGFR by the race-free CKD-EPI 2021 creatinine equation
    (Inker et al., NEJM 2021;385:1737-49); stages G1-G5 per KDIGO 2012.
  * Metformin is contraindicated below eGFR 30 mL/min/1.73m2 (FDA drug safety communication,
    2016); SGLT2 inhibitors are not started below eGFR 20 (KDIGO 2022 diabetes-in-CKD guideline).
Illustrative (not clinical guidance): the risk model linking age, BMI and smoking to diagnoses,
the lab distributions per diagnosis, the ADAG tolerance band (+/- 15 mg/dL) and the
medication/complication tables.
"""

from __future__ import annotations

from worldgen.domains.medical.faults import FAULTS
from worldgen.domains.medical.text import renderer
from worldgen.domains.medical.world import build

# Pinned to the stream this domain had when domains were a list, so every published dataset
# digest stays the same; a new domain leaves these out and gets one from its name.
SEED_STREAM = 0
ORDER = 0

__all__ = ["FAULTS", "ORDER", "SEED_STREAM", "build", "renderer"]
