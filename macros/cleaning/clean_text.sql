{#- Text as a person means it: NFKC (full-width letters, digits and the ideographic space
    become their plain forms), white space trimmed at both ends, empty -> NULL. A text in
    NFKC already (most cells) is kept as it is: IS NFKC NORMALIZED is true exactly when
    normalize() would return the text unchanged, and its quick check costs far less than
    normalize() itself. The value is read three times: give a column, not an expression. -#}
{% macro clean_text(value) -%}
    {%- set v = value -%}
    {%- set nfkc -%}
        case when {{ v }} is nfkc normalized then {{ v }} else normalize({{ v }}, nfkc) end
    {%- endset -%}
    nullif(btrim({{ nfkc }}, e' \t\r\n'), '')
{%- endmacro %}
