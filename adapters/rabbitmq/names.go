package rabbitmq

import "github.com/agora-osb/agora/adapters"

// Names are derived from IDs rather than stored, so Unbind and Deprovision
// work even when the receipt Bind returned was lost in a crash. They are
// built with adapters.SafeName, whose ID parts never contain '-': then
// `agora-<instance>-` is an unambiguous user prefix, and instance "a" can
// never own the users of instance "a-b". These names must never change:
// existing vhosts and users are found by them alone (names_test.go pins
// them).

// namePrefix starts every vhost and user this adapter creates, so an
// operator can tell Agora's from hand-made ones.
const namePrefix = "agora"

// vhostName is the instance's virtual host.
func vhostName(instanceID string) string {
	return adapters.SafeName(namePrefix, instanceID)
}

// instanceUserPrefix is shared by all binding users of one instance;
// Deprovision finds leftover users with it.
func instanceUserPrefix(instanceID string) string {
	return vhostName(instanceID) + "-"
}

// bindingUserName is the RabbitMQ user of one binding.
func bindingUserName(instanceID, bindingID string) string {
	return adapters.SafeName(namePrefix, instanceID, bindingID)
}
