<<- /* Any text format works; sprig functions escape values for it. */ ->>
{
  "database": {
    "user": << passwork "prod/db/postgres" "login" | toJson >>,
    "password": << passwork "prod/db/postgres" "password" | toJson >>
  },
  "grafana": {
    "url": << passbolt "infra/monitoring/grafana" "uri" | toJson >>,
    "api_key": << passbolt "infra/monitoring/grafana" "api-key" | toJson >>
  },
  "smtp": {
    "user": << passagent "SMTP relay" "username" | toJson >>,
    "password": << passagent "SMTP relay" "password" | toJson >>
  },
  "stripe_otp": << passwork "prod/payments/stripe" "totp" | toJson >>
}
