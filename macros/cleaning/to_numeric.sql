{#- Text to numeric, or NULL when the text is not a plain decimal number (never an error).
    cleaned=true: the value is clean_text's result already (a column a model cleaned once
    for its several uses), read as it is instead of cleaned again; a column costs nothing to
    read again, so it is first tried as bare digits (most cells, which the pattern accepts
    too) with a trim, far cheaper than the regular expression. -#}
{% macro to_numeric(value, cleaned=false) -%}
    {%- set text = value if cleaned else clean_text(value) -%}
    case
    {%- if cleaned %}
        when ltrim({{ text }}, '0123456789') = '' and {{ text }} != ''
            then {{ text }}::numeric
    {%- endif %}
        when {{ text }} ~ '^[-+]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][-+]?[0-9]+)?$'
            then {{ text }}::numeric
    end
{%- endmacro %}
