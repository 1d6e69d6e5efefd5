<<- /*
  Every entry of the Passwork vault "prod" and its folders as KEY="password"
  lines, the way run --env-from names them (upper case, _ for the rest).
  quote escapes the value for dotenv's double quotes.
  Render: injector render -t examples/bulk/folder.env.tpl:prod.env
*/ ->>
<< range passworkEntries "prod/**" ->>
<< regexReplaceAll "[^A-Z0-9_]" (upper .Name) "_" >>=<< .Password | quote >>
<< end ->>
