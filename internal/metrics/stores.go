package metrics

import (
	"context"
	"errors"
	"net"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisHook is a go-redis hook that records every command and pipeline:
// store "redis", operation the command's name ("evalsha", "get") or
// "pipeline". A nil answer (redis.Nil) is not an error.
func (m *Metrics) RedisHook() redis.Hook { return redisHook{m} }

type redisHook struct{ m *Metrics }

func (h redisHook) DialHook(next redis.DialHook) redis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		start := time.Now()
		conn, err := next(ctx, network, addr)
		if err != nil {
			h.m.StoreCalled("redis", "dial", err, time.Since(start))
		}
		return conn, err
	}
}

func (h redisHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		start := time.Now()
		err := next(ctx, cmd)
		h.m.StoreCalled("redis", strings.ToLower(cmd.Name()), redisErr(err), time.Since(start))
		return err
	}
}

func (h redisHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		start := time.Now()
		err := next(ctx, cmds)
		h.m.StoreCalled("redis", "pipeline", redisErr(err), time.Since(start))
		return err
	}
}

func redisErr(err error) error {
	if errors.Is(err, redis.Nil) {
		return nil
	}
	return err
}
