package dlp

// weights say how much one type of finding, at full confidence, says the
// message carries PHI. Identifiers that single out a patient and clinical
// codes weigh most; provider identifiers (NPI, DEA) are public and phone
// numbers and addresses are as often the clinic's own as the patient's.
//
// Built-in dictionary terms weigh little: conditions and drugs appear in
// newsletters and health education as often as in mail about a person,
// so alone they never reach the default threshold. The account's own
// terms weigh fully: an account lists a term (an HIV clinic's service
// names, a substance-use programme's drugs) because mail naming it to a
// recipient reveals that recipient's health, so one such term (0.6
// confidence) makes a message PHI at the default threshold of 0.5.
var weights = map[Type]float64{
	SSN:          1.0,
	MBI:          1.0,
	MRN:          0.9,
	PaymentCard:  0.9,
	DOB:          0.8,
	ICD10:        0.7,
	CPT:          0.6,
	ABARouting:   0.6,
	DEA:          0.4,
	ClinicalTerm: 0.35,
	AccountTerm:  1.0,
	NPI:          0.3,
	Address:      0.3,
	Phone:        0.2,
}

// riskScore combines findings into a score in [0, 1]:
//
//	per type t:  s_t = w_t × (1 − Π_i (1 − c_i))   over the findings of type t
//	message:     S   = 1 − Π_t (1 − s_t)
//
// Within a type, confidences combine as independent evidence (noisy-OR),
// capped by the type's weight, so a newsletter with twenty clinic phone
// numbers scores no more than 0.2; across types the evidence adds up the
// same way, so a diagnosis term next to a date of birth scores high.
func riskScore(fs []Finding) float64 {
	miss := map[Type]float64{}
	for _, f := range fs {
		m, ok := miss[f.Type]
		if !ok {
			m = 1
		}
		miss[f.Type] = m * (1 - f.Confidence)
	}
	clean := 1.0
	for t, m := range miss {
		clean *= 1 - weights[t]*(1-m)
	}
	return round2(1 - clean)
}
