package integration

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

var _ = Describe("bad input", func() {
	It("gets a clear 4xx, never a 5xx, and changes nothing in Redis", func(ctx SpecContext) {
		b := StartBroker(ctx, BrokerOptions{Prefix: specPrefix()})
		osb, prefix := b.OSB, b.Prefix

		// One good instance, so bindings can be attempted against it.
		good := newGUID()
		Expect(osb.Provision(good, standardPlanID, false).Status).To(Equal(http.StatusCreated))
		before := dumpValues(ctx, prefix)

		body := func(v any) []byte {
			data, err := json.Marshal(v)
			Expect(err).NotTo(HaveOccurred())
			return data
		}
		valid := body(ProvisionBody(standardPlanID))
		bind := body(map[string]any{"service_id": secretsServiceID, "plan_id": standardPlanID})
		huge := append([]byte(`{"service_id":"`+secretsServiceID+`","plan_id":"`+standardPlanID+`","parameters":{"x":"`),
			bytes.Repeat([]byte("a"), 2<<20)...)
		huge = append(huge, []byte(`"}}`)...)
		long := strings.Repeat("a", 300)
		withParams := ProvisionBody(standardPlanID)
		withParams["parameters"] = map[string]any{"colour": "red"}
		unknownService := ProvisionBody(standardPlanID)
		unknownService["service_id"] = "no-such-service"
		unknownPlan := ProvisionBody(standardPlanID)
		unknownPlan["plan_id"] = "no-such-plan"
		notObject := ProvisionBody(standardPlanID)
		notObject["parameters"] = []string{"a"}
		badContext := ProvisionBody(standardPlanID)
		badContext["context"] = "cloudfoundry"
		wrongMI := ProvisionBody(standardPlanID)
		wrongMI["maintenance_info"] = map[string]any{"version": "9.9.9"}

		cases := []struct {
			name         string
			method, path string
			body         []byte
			header       http.Header
			status       int
		}{
			{"malformed JSON", http.MethodPut, instancePath(newGUID()), []byte(`{"service_id":`), nil, http.StatusBadRequest},
			{"trailing garbage after the JSON", http.MethodPut, instancePath(newGUID()), append(append([]byte{}, valid...), []byte(`{}`)...), nil, http.StatusBadRequest},
			{"a JSON array", http.MethodPut, instancePath(newGUID()), []byte(`[]`), nil, http.StatusBadRequest},
			{"an empty body", http.MethodPut, instancePath(newGUID()), []byte{}, nil, http.StatusBadRequest},
			{"wrong content type", http.MethodPut, instancePath(newGUID()), valid, http.Header{"Content-Type": {"text/plain"}}, http.StatusUnsupportedMediaType},
			{"form content type", http.MethodPut, instancePath(newGUID()), valid, http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}, http.StatusUnsupportedMediaType},
			{"a 2 MiB body", http.MethodPut, instancePath(newGUID()), huge, nil, http.StatusRequestEntityTooLarge},
			{"unknown service_id", http.MethodPut, instancePath(newGUID()), body(unknownService), nil, http.StatusBadRequest},
			{"unknown plan_id", http.MethodPut, instancePath(newGUID()), body(unknownPlan), nil, http.StatusBadRequest},
			{"parameters the plan does not take", http.MethodPut, instancePath(newGUID()), body(withParams), nil, http.StatusBadRequest},
			{"parameters not an object", http.MethodPut, instancePath(newGUID()), body(notObject), nil, http.StatusBadRequest},
			{"context not an object", http.MethodPut, instancePath(newGUID()), body(badContext), nil, http.StatusBadRequest},
			{"maintenance_info of another version", http.MethodPut, instancePath(newGUID()), body(wrongMI), nil, http.StatusUnprocessableEntity},
			{"instance ID with %2F", http.MethodPut, "/v2/service_instances/a%2Fb", valid, nil, http.StatusBadRequest},
			{"instance ID of 300 characters", http.MethodPut, "/v2/service_instances/" + long, valid, nil, http.StatusBadRequest},
			{"instance ID ..", http.MethodPut, "/v2/service_instances/..", valid, nil, http.StatusBadRequest},
			{"instance ID %2E%2E", http.MethodPut, "/v2/service_instances/%2E%2E", valid, nil, http.StatusBadRequest},
			{"instance ID with a control character", http.MethodPut, "/v2/service_instances/a%0Ab", valid, nil, http.StatusBadRequest},
			{"binding ID with %2F", http.MethodPut, instancePath(good) + "/service_bindings/a%2Fb", bind, nil, http.StatusBadRequest},
			{"binding ID of 300 characters", http.MethodPut, instancePath(good) + "/service_bindings/" + long, bind, nil, http.StatusBadRequest},
			{"binding ID ..", http.MethodPut, instancePath(good) + "/service_bindings/..", bind, nil, http.StatusBadRequest},
			{"bind to an unknown instance", http.MethodPut, bindingPath(newGUID(), newGUID()), bind, nil, http.StatusNotFound},
			{"bind with malformed JSON", http.MethodPut, bindingPath(good, newGUID()), []byte(`{`), nil, http.StatusBadRequest},
			{"bind with another plan than the instance's", http.MethodPut, bindingPath(good, newGUID()), body(map[string]any{"service_id": secretsServiceID, "plan_id": asyncPlanID}), nil, http.StatusBadRequest},
			{"DELETE with a %2F ID", http.MethodDelete, "/v2/service_instances/a%2Fb?service_id=" + secretsServiceID + "&plan_id=" + standardPlanID, nil, nil, http.StatusBadRequest},
			{"GET last_operation with a 300-character ID", http.MethodGet, "/v2/service_instances/" + long + "/last_operation", nil, nil, http.StatusBadRequest},
			{"no X-Broker-API-Version", http.MethodPut, instancePath(newGUID()), valid, http.Header{"X-Broker-API-Version": {""}}, http.StatusPreconditionFailed},
			{"X-Broker-API-Version 3.0", http.MethodPut, instancePath(newGUID()), valid, http.Header{"X-Broker-API-Version": {"3.0"}}, http.StatusPreconditionFailed},
			{"wrong broker credentials", http.MethodPut, instancePath(newGUID()), valid, http.Header{"Authorization": {"Basic d3Jvbmc6d3Jvbmc="}}, http.StatusUnauthorized},
		}
		for _, c := range cases {
			resp := osb.Raw(c.method, c.path, c.body, c.header)
			Expect(resp.Status).To(BeNumerically("<", 500), "%s: %s", c.name, resp)
			Expect(resp.Status).To(Equal(c.status), "%s: %s", c.name, resp)
			Expect(resp.Str("description")).NotTo(BeEmpty(), "%s: a 4xx must say what is wrong: %s", c.name, resp)
		}

		By("nothing changed in Redis")
		Expect(dumpValues(ctx, prefix)).To(Equal(before))
		fmt.Fprintf(GinkgoWriter, "keys under %s: %v\n", prefix, prefixKeys(ctx, prefix))
	}, SpecTimeout(60*time.Second))
})
