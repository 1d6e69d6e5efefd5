<< passwork "prod/tls/api.example.com" "attachment:ca.pem" >>
