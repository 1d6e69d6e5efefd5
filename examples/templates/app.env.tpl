# Rendered by injector: environment for the app. Mode 0600.
DB_USER=<< passwork "prod/db/postgres" "login" >>
DB_PASSWORD=<< passwork "prod/db/postgres" "password" >>
DB_URL=postgres://<< passwork "prod/db/postgres" "login" >>:<< passwork "prod/db/postgres" "password" | urlquery >>@db.prod.internal:<< passwork "prod/db/postgres" "port" >>/app?sslmode=<< passwork "prod/db/postgres" "sslmode" >>
STRIPE_KEY=<< passwork "prod/payments/stripe" >>
STRIPE_WEBHOOK_SECRET=<< passwork "prod/payments/stripe" "webhook-secret" >>
DEPLOY_TOKEN=<< passbolt "infra/ci/deploy-key" "password" >>
REDIS_URL=redis://<< passagent "Redis cache" "username" >>:<< passagent "Redis cache" "password" >>@cache.internal:6379/<< passagent "Redis cache" "db" >>
