package redisstore_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/agora-osb/agora/broker"
)

// TestCommitManyWritesWhatCommitWrites: a bulk load leaves the same
// records, status and index a broker's commits do, so what reads them
// (the listings, last_operation) cannot tell them apart.
func TestCommitManyWritesWhatCommitWrites(t *testing.T) {
	_, _, s := newStore(t)
	ctx := context.Background()
	var ms []broker.Mutation
	var ids []string
	var entries []broker.IndexEntry
	for i := range 5 {
		iid := fmt.Sprintf("bulk-%d", i)
		ids = append(ids, iid)
		o := op("op-"+iid, broker.OpSucceeded)
		in := inst(broker.InstanceReady, o)
		in.ID, in.ServiceID = iid, "svc"
		entries = append(entries, broker.EntryOf(in))
		ms = append(ms, broker.Mutation{InstanceID: iid, PutInstance: in, PutOperation: o,
			PutBinding: &broker.Binding{ID: iid + "-b", InstanceID: iid, State: broker.BindingBound, CredentialRef: "ref"}})
	}
	if err := s.CommitMany(ctx, ms); err != nil {
		t.Fatal(err)
	}
	if err := s.AddInstances(ctx, "svc", entries); err != nil {
		t.Fatal(err)
	}
	reqs := make([]broker.LoadRequest, len(ids))
	for i, id := range ids {
		reqs[i] = broker.LoadRequest{InstanceID: id, AllBindings: true, OperationID: "op-" + id}
	}
	snaps, err := s.LoadMany(ctx, reqs)
	if err != nil {
		t.Fatal(err)
	}
	for i, snap := range snaps {
		if snap.Instance == nil || snap.Instance.ID != ids[i] || len(snap.Bindings) != 1 || snap.Operation == nil {
			t.Errorf("instance %s after CommitMany: %+v", ids[i], snap)
		}
		st, err := s.Status(ctx, ids[i])
		// The status holds the ready-made poll answer (or, for records
		// without one, the operation summary): either must name the op.
		opID := ""
		switch {
		case st.Answer != nil:
			opID = st.Answer.OperationID
		case st.Operation != nil:
			opID = st.Operation.ID
		}
		if err != nil || opID != "op-"+ids[i] {
			t.Errorf("status of %s: %+v %v", ids[i], st, err)
		}
	}
	got, next, err := s.ScanOfferingInstances(ctx, "svc", "", 100)
	if err != nil || next != "" || len(got) != len(ids) {
		t.Errorf("index after AddInstances: %v %q %v", got, next, err)
	}
	if err := s.CommitMany(ctx, []broker.Mutation{{PutInstance: ms[0].PutInstance}}); err == nil {
		t.Error("CommitMany of a mutation without an instance ID succeeded")
	}
}
