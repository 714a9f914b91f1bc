// Package rabbitmq is the messaging-team's adapter: each service instance is
// a RabbitMQ virtual host of its own, and each binding is a RabbitMQ user
// with full permissions on that one vhost and none anywhere else.
//
// Everything goes through the management HTTP API (the rabbitmq_management
// plugin), so the adapter needs no AMQP connection of its own and every
// step is a plain, idempotent PUT or DELETE. Plans may cap a vhost's
// connections and queues with vhost limits.
//
// What it must never do: touch vhosts or users other than the ones it
// derives from instance and binding IDs (`agora-<instance>` and
// `agora-<instance>-<binding>`), or put a password into an error, a log
// line or a Receipt.
package rabbitmq
