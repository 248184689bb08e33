{#- Text as a person means it: NFKC (full-width letters, digits and the ideographic space
    become their plain forms), white space trimmed at both ends, empty -> NULL. -#}
{% macro clean_text(value) -%}
    nullif(btrim(normalize({{ value }}, nfkc), e' \t\r\n'), '')
{%- endmacro %}
