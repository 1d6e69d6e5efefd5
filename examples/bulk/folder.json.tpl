<<- /*
  The Passwork folder prod/db as one JSON object keyed by entry name: login,
  password and the custom fields of each entry.
  Render: injector render -t examples/bulk/folder.json.tpl:db.json
*/ ->>
<<- $out := dict ->>
<<- range passworkEntries "prod/db" ->>
<<- $_ := set $out .Name (dict "login" .Fields.login "password" .Password "settings" .Custom) ->>
<<- end ->>
<< toPrettyJson $out >>
