package shared

import "github.com/minio/minio-go/v7/pkg/lifecycle"

func lifecycleWith(id string) *lifecycle.Configuration {
	c := lifecycle.NewConfiguration()
	c.Rules = append(c.Rules, lifecycle.Rule{ID: id, Status: "Enabled", RuleFilter: lifecycle.Filter{Prefix: "elsewhere/"},
		Expiration: lifecycle.Expiration{Days: 7}})
	return c
}
