{#- A client code as 7-digit text, or NULL when the value is not one (full-width digits and
    surrounding spaces are forgiven; anything else is not guessed at). -#}
{% macro client_code(value) -%}
    case
        when {{ clean_text(value) }} ~ '^[0-9]{7}$' then {{ clean_text(value) }}
    end
{%- endmacro %}
