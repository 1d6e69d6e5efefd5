<<- /*
  Every Passbolt resource under the folder "infra" as YAML. toJson quotes
  each value as a JSON string, which YAML reads as a double-quoted scalar.
  Render: injector render -t examples/bulk/folder.yaml.tpl:infra.yaml
*/ ->>
resources:
<<- range passboltEntries "infra/**" >>
  << .Path | toJson >>:
    username: << get .Fields "username" | toJson >>
    password: << .Password | toJson >>
<<- end >>
