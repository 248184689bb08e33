{#- A yes/no column of the client workbook: V or 1 is true, blank or X is false, any other
    word is NULL (unknown); flag_word keeps that word so it is never lost. -#}
{% macro flag_value(value) -%}
    case
        when {{ clean_text(value) }} is null then false
        when upper({{ clean_text(value) }}) in ('V', '1') then true
        when upper({{ clean_text(value) }}) = 'X' then false
    end
{%- endmacro %}
